import { describe, expect, it } from "vitest"
import { defineJob } from "../api/job.ts"
import { TaskKind } from "../model/status.ts"
import type { Settled, TaskCalls, TaskRun } from "../worker/execute.ts"
import { serveExecutorPort } from "./guest.ts"
import { portExecutor, type PortExecutor } from "./port-executor.ts"
import type { GuestPort, HostPort } from "./protocol.ts"

/** The core executor over in-memory ports: each message is cloned and arrives on a later turn, as over postMessage. */

const probe = defineJob({
  name: "probe",
  kind: "map",
  process: async (task, ctx) => {
    if (task.name === "map") return { created: await ctx.map([1, "two"], "child"), body: task.body, params: ctx.params }
    await ctx.appendContext({ started: task.id })
    // The abort may have come while appendContext was on its way: the signal is then aborted already.
    return new Promise((resolve) => {
      const done = () => resolve({ aborted: String(ctx.signal.reason) })
      if (ctx.signal.aborted) done()
      else ctx.signal.addEventListener("abort", done, { once: true })
    })
  }
})

/** Two ends of a channel; `cut` drops whatever either end sends afterwards, as a guest that stopped would. */
const portPair = () => {
  const toHost: Array<(message: never) => void> = []
  const toGuest: Array<(message: never) => void> = []
  let cut = false
  const deliver = (listeners: Array<(message: never) => void>, message: unknown, transfer?: ArrayBuffer[]) => {
    if (cut) return
    const copy = structuredClone(message, transfer === undefined ? {} : { transfer }) as never
    setTimeout(() => {
      if (!cut) for (const listener of listeners) listener(copy)
    }, 0)
  }
  const host: HostPort = {
    postMessage: (messages, transfer) => deliver(toGuest, messages, transfer),
    onMessage: (listener) => toHost.push(listener)
  }
  const guest: GuestPort = {
    postMessage: (messages, transfer) => deliver(toHost, messages, transfer),
    onMessage: (listener) => toGuest.push(listener)
  }
  return { host, guest, cut: () => (cut = true) }
}

/** An executor whose every port leads to a guest serving `probe`; `pairs` holds them in the order they were opened. */
const executorOf = (ports = 1) => {
  const pairs: Array<ReturnType<typeof portPair>> = []
  const executor: PortExecutor<HostPort> = portExecutor({
    ports,
    open: () => {
      const pair = portPair()
      serveExecutorPort(pair.guest, Promise.resolve(new Map([[probe.name, probe]])))
      pairs.push(pair)
      return pair.host
    }
  })
  return { executor, pairs }
}

const taskRun = (name: string, body: unknown = null): TaskRun => ({
  instanceId: "inst-1",
  job: "probe",
  task: { id: `0.${name}`, name, kind: TaskKind.Sub, body: JSON.stringify(body), attempt: 1 },
  params: JSON.stringify({ p: 1 }),
  context: {},
  maxResultBytes: undefined
})

/** TaskCalls that answer at once; `started` resolves on the first appendContext. */
const callsOf = () => {
  const mapped: Array<{ items: ReadonlyArray<unknown>; name: string }> = []
  let markStarted: () => void = () => {}
  const started = new Promise<void>((resolve) => (markStarted = resolve))
  const calls: TaskCalls = {
    map: async (items, name) => {
      mapped.push({ items, name })
      return items.length
    },
    appendContext: async () => {
      markStarted()
      return true
    },
    readResults: async () => []
  }
  return { calls, mapped, started }
}

const never = new AbortController().signal

const resultOf = (settled: Settled): unknown => {
  if (!settled.ok) throw new Error(`settled with an error: ${JSON.stringify(settled.error)}`)
  return JSON.parse(settled.result)
}

describe("portExecutor and serveExecutorPort", () => {
  it("R-DISP-10 a run's map call is made through its TaskCalls and the result comes back", async () => {
    const { executor } = executorOf()
    const { calls, mapped } = callsOf()
    expect(resultOf(await executor.run(taskRun("map", { n: 7 }), calls, never))).toEqual({
      created: 2,
      body: { n: 7 },
      params: { p: 1 }
    })
    expect(mapped).toEqual([{ items: [1, "two"], name: "child" }])
    await executor.ready()
    expect(executor.stats()).toEqual({ ports: 1, running: 0 })
  })

  it("R-DISP-10 an abort of the run's signal aborts the task's signal on the guest", async () => {
    const { executor } = executorOf()
    const { calls, started } = callsOf()
    const controller = new AbortController()
    const running = executor.run(taskRun("wait"), calls, controller.signal)
    await started
    controller.abort("killed by the test")
    expect(resultOf(await running)).toEqual({ aborted: "killed by the test" })
  })

  it("R-DISP-10 a port lost mid-run fails its runs with the cause, and a guest that had loaded is replaced", async () => {
    const { executor, pairs } = executorOf()
    const { calls, started } = callsOf()
    const running = executor.run(taskRun("wait"), calls, never)
    await started
    const lost = pairs[0]!
    lost.cut()
    executor.portLost(lost.host, "it exited with code 3")
    const settled = await running
    expect(settled).toMatchObject({ ok: false, error: { tag: "TaskfoldError", reason: "thread-crashed" } })
    expect(settled.ok ? "" : settled.error.message).toContain("it exited with code 3")
    expect(pairs).toHaveLength(2)
    expect(resultOf(await executor.run(taskRun("map"), callsOf().calls, never))).toMatchObject({ created: 2 })
  })

  it("R-DISP-10 close fails the runs still going and refuses new ones", async () => {
    const { executor } = executorOf()
    const { calls, started } = callsOf()
    const running = executor.run(taskRun("wait"), calls, never)
    await started
    await executor.close()
    expect(await running).toMatchObject({ ok: false, error: { reason: "pool-closed" } })
    expect(await executor.run(taskRun("map"), calls, never)).toMatchObject({
      ok: false,
      error: { reason: "pool-closed" }
    })
  })
})
