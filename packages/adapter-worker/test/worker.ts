/**
 * The Worker the workerd tests run: a taskfold deployment with a few test jobs, plus hooks the tests use to
 * watch from outside the object (this module's state is shared by the tests, the object and the lanes,
 * which all run in one isolate here).
 */
import { defineJob, type Outcome } from "@taskfold/core"
import { DurableObject } from "cloudflare:workers"
import { makeDurableObjectStore as makeSqlStore } from "../src/sql-driver.ts"
import { LANE_RUN_PATH, taskfold } from "../src/index.ts"
import { CONFORMANCE_PATH, serveConformance } from "./conformance.ts"

export { LaneProbe } from "./conformance.ts"

export const watch = {
  /** Runs of each task: `${instanceId} ${taskId}` → attempts seen, and when each started. */
  runs: new Map<string, number[]>(),
  startedAt: new Map<string, number[]>(),
  outcomes: new Map<string, Outcome>(),
  /** Lane starts to accept and then drop, as an invocation that dies at once would. */
  swallowLaneStarts: 0,
  swallowed: 0,
  /** Lane starts whose answer is cut this long after the start, as if the invocation had crashed then. */
  cutLaneStarts: [] as number[]
}

const ran = (instanceId: string, taskId: string, attempt: number) => {
  const key = `${instanceId} ${taskId}`
  const runs = watch.runs.get(key) ?? []
  const times = watch.startedAt.get(key) ?? []
  runs.push(attempt)
  times.push(Date.now())
  watch.runs.set(key, runs)
  watch.startedAt.set(key, times)
}

/**
 * Resolves with `found()` once it is defined, checking on the caller's own timers. A test never awaits a
 * promise that a lane or the object resolves: workerd would resume the test inside that request, and the
 * test's later timers and fetches would belong to it and stop when it ends (a lane's ends with its task).
 */
const poll = <A>(found: () => A | undefined, what: string, timeoutMs = 30_000): Promise<A> =>
  new Promise((resolve, reject) => {
    const until = Date.now() + timeoutMs
    const check = () => {
      const value = found()
      if (value !== undefined) return resolve(value)
      if (Date.now() > until) return reject(new Error(`gave up waiting for ${what}`))
      setTimeout(check, 10)
    }
    check()
  })

/** When the next run of this task starts (after the call). */
export const nextStart = (instanceId: string, taskId: string): Promise<number> => {
  const key = `${instanceId} ${taskId}`
  const seen = watch.startedAt.get(key)?.length ?? 0
  return poll(() => watch.startedAt.get(key)?.[seen], `a start of ${key}`)
}

export const outcomeOf = (instanceId: string): Promise<Outcome> =>
  poll(() => watch.outcomes.get(instanceId), `the outcome of ${instanceId}`)

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const sumReduce = async (results: AsyncIterable<{ name: string; ok: boolean; result: unknown }>) => {
  let sum = 0
  let count = 0
  for await (const result of results) {
    if (result.name !== "item") continue
    if (!result.ok) throw new Error(`an item failed: ${String(result.result)}`)
    sum += result.result as number
    count++
  }
  return { sum, count }
}

/** Maps params.n items 1..n in one call; each doubles its item; reduce sums them. */
const sum = defineJob({
  name: "sum",
  kind: "mapReduce",
  process: async (task, ctx) => {
    if (task.isRoot) {
      const n = (ctx.params as { n: number }).n
      return ctx.map(
        Array.from({ length: n }, (_, i) => i + 1),
        "item"
      )
    }
    return (task.body as number) * 2
  },
  reduce: sumReduce
})

/** Like sum, but every run is counted and every item takes params.ms milliseconds. */
const counted = defineJob({
  name: "counted",
  kind: "mapReduce",
  // What the tests submit: paces and timeouts, so a test runs in seconds.
  overridable: ["progressInterval", "heartbeatInterval", "workerTimeout", "ackTimeout", "maxRedeliveries"],
  process: async (task, ctx) => {
    ran(ctx.instanceId, task.id, task.attempt)
    if (task.isRoot) {
      const n = (ctx.params as { n: number }).n
      return ctx.map(
        Array.from({ length: n }, (_, i) => i + 1),
        "item"
      )
    }
    await sleep((ctx.params as { ms?: number }).ms ?? 0)
    return (task.body as number) * 2
  },
  reduce: async (results, ctx) => {
    ran(ctx.instanceId, "FINAL", 0)
    return sumReduce(results)
  }
})

/** One item that fails on its first attempt and succeeds on the next. */
const flaky = defineJob({
  name: "flaky",
  kind: "mapReduce",
  overridable: ["progressInterval", "heartbeatInterval", "workerTimeout", "taskRetries", "retryBackoff"],
  process: async (task, ctx) => {
    ran(ctx.instanceId, task.id, task.attempt)
    if (task.isRoot) return ctx.map([21], "item")
    if (task.attempt === 0) throw new Error("first attempt fails")
    return (task.body as number) * 2
  },
  reduce: sumReduce
})

/** One item that never finishes on its own: it waits until it is stopped. */
const stuck = defineJob({
  name: "stuck",
  kind: "mapReduce",
  overridable: [
    "progressInterval",
    "heartbeatInterval",
    "workerTimeout",
    "instanceTimeout",
    "taskRetries",
    "runReduceIfFail"
  ],
  process: async (task, ctx) => {
    ran(ctx.instanceId, task.id, task.attempt)
    if (task.isRoot) return ctx.map([1], "item")
    await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }))
    ran(ctx.instanceId, `${task.id} stopped`, task.attempt)
    return 0
  },
  reduce: sumReduce
})

const deployment = taskfold({
  jobs: [sum, counted, flaky, stuck],
  pollWaitMs: 300,
  maxBodyBytes: 2 * 1024 * 1024,
  onOutcome: (instanceId, outcome) => {
    watch.outcomes.set(instanceId, outcome)
  }
})

export class TaskfoldTracker extends deployment.Tracker {}

/** Holds a bare store for the conformance suite. */
export class StoreProbe extends DurableObject {
  readonly store = makeSqlStore(this.ctx.storage)
}

export default {
  fetch: (request: Request, env: Record<string, unknown>, ctx: ExecutionContext) => {
    // The far ends of the transport conformance runs (transport.test.ts).
    if (new URL(request.url).pathname.startsWith(`${CONFORMANCE_PATH}/`)) return serveConformance(request, env, ctx)
    if (watch.swallowLaneStarts > 0 && new URL(request.url).pathname === LANE_RUN_PATH) {
      watch.swallowLaneStarts--
      watch.swallowed++
      return new Response(null, { status: 202 })
    }
    const cut = new URL(request.url).pathname === LANE_RUN_PATH ? watch.cutLaneStarts.shift() : undefined
    return cut === undefined ? deployment.fetch(request, env, ctx) : cutAfter(deployment.fetch(request, env, ctx), cut)
  }
}

/** The answer of a lane start, ended after `ms` without its closing line; the invocation itself runs on. */
const cutAfter = async (answer: Response | Promise<Response>, ms: number): Promise<Response> => {
  const response = await answer
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>()
  setTimeout(() => {
    void writable.close()
    void response.body?.cancel()
  }, ms)
  return new Response(readable, { status: response.status, headers: response.headers })
}
