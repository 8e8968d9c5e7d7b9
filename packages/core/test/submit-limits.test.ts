/**
 * Per-job limits at submit (docs/decisions.md, "Submit limits"): what an operator's submit may set of a job's
 * config, and how many instances one host runs for submits. Through the host's submit and through the HTTP app.
 */
import { Effect } from "effect"
import fc from "fast-check"
import type { Hono } from "hono"
import { describe, expect, it } from "vitest"
import { makeMemoryStore, makeTrackerHost, type TrackerHost, type TrackerHostOptions } from "../src/adapter.ts"
import { defineJob, RejectedError, type Job, type JobConfig, type JobConfigOverrides } from "../src/index.ts"
import { resolveConfigSync } from "../src/model/config.ts"
import { makeTrackerApp } from "../src/wire/index.ts"
import { aborted, waitUntil } from "./support.ts"

const SECRET = "operator-secret-for-submit-limits"

/** Holds its instance live until the instance is killed or the host closes: its config stays readable. */
const held = defineJob({
  name: "held",
  kind: "mapReduce",
  config: { maxWaitingTasks: 5_000, dispatchBatchSize: 64, maxWorkers: 8 },
  overridable: ["taskRetries", "maxWaitingTasks", "dispatchBatchSize", "maxWorkers", "maxInFlight"],
  process: async (task, ctx) => (task.isRoot ? aborted(ctx.signal) : task.body),
  reduce: async () => "done"
})

/** Fails every attempt, counting them: its attempts show the taskRetries the instance runs with. */
const attempts = new Map<string, number>()
const failing = defineJob({
  name: "failing",
  kind: "standalone",
  config: { taskRetries: 0, retryBackoff: { kind: "fixed", ms: 0 } },
  overridable: ["taskRetries"],
  process: (_task, ctx) => {
    attempts.set(ctx.instanceId, (attempts.get(ctx.instanceId) ?? 0) + 1)
    throw new Error("always fails")
  }
})

/** A job that lists no overridable keys: a submit may set none. */
const closed = defineJob({ name: "closed", kind: "standalone", process: () => "ok" })

/** Not through defineJob, which refuses to list frequent: the host refuses to set it anyway. */
const scheduled: Job = {
  name: "scheduled",
  kind: "standalone",
  config: { frequent: { mode: "fixedRate", everyMs: 60_000 } },
  overridable: ["frequent", "taskRetries"],
  process: () => "tick"
}

/** The deployment's defaults, under the job's own config. */
const deployment: JobConfigOverrides = { maxInFlight: 512 }

interface Hosted {
  readonly host: TrackerHost
  readonly store: ReturnType<typeof makeMemoryStore>
  readonly app: Hono
}

const withHost = <A>(
  body: (hosted: Hosted) => Effect.Effect<A, unknown>,
  options: Partial<TrackerHostOptions> = {}
): Promise<A> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const store = makeMemoryStore()
        const host = yield* makeTrackerHost({
          jobs: [held, failing, closed, scheduled],
          // Its list yields, as a real store's does: concurrent submits interleave there.
          store: { ...store, listInstances: () => Effect.andThen(Effect.yieldNow, store.listInstances()) },
          config: deployment,
          ...options
        })
        return yield* body({ host, store, app: makeTrackerApp(host, { token: SECRET }) })
      })
    )
  )

/** What "nothing stored, nothing started" compares: stored ids, live ids, the host's list. */
const snapshot = ({ host, store }: Hosted) =>
  Effect.gen(function* () {
    return {
      stored: [...(yield* store.listInstances())].sort(),
      live: host
        .instances()
        .map((instance) => instance.instanceId)
        .sort(),
      listed: yield* host.list()
    }
  })

const refusal = (hosted: Hosted, request: Parameters<TrackerHost["submit"]>[0]) =>
  Effect.gen(function* () {
    const before = yield* snapshot(hosted)
    const error = yield* Effect.flip(hosted.host.submit(request))
    expect(error).toBeInstanceOf(RejectedError)
    expect(yield* snapshot(hosted)).toEqual(before)
    if (request.instanceId !== undefined) expect(yield* hosted.store.load(request.instanceId)).toBeUndefined()
    return error as RejectedError
  })

const post = (app: Hono, body: unknown) =>
  Effect.promise(async () => {
    const response = await app.request("/v1/instances", {
      method: "POST",
      headers: { authorization: `Bearer ${SECRET}`, "content-type": "application/json" },
      body: JSON.stringify(body)
    })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  })

const configOf = (hosted: Hosted, instanceId: string) => hosted.host.live(instanceId)?.config

describe("per-job limits at submit", () => {
  it("R-WIRE-4 a submit setting a key the job does not list in overridable is refused naming the key and the list, and nothing is stored", () =>
    withHost((hosted) =>
      Effect.gen(function* () {
        const error = yield* refusal(hosted, {
          job: "held",
          instanceId: "h1",
          config: { ackTimeout: 1, taskRetries: 2 }
        })
        expect(error.reason).toBe("bad-input")
        expect(error.message).toContain("ackTimeout")
        expect(error.message).toContain("taskRetries, maxWaitingTasks, dispatchBatchSize, maxWorkers, maxInFlight")
        // A job with no overridable list lets a submit set nothing.
        const none = yield* refusal(hosted, { job: "closed", instanceId: "c1", config: { taskRetries: 3 } })
        expect(none.message).toMatch(/may not set taskRetries; the job lets a submit override nothing/)
        // An empty config sets nothing, so it is no override.
        expect(yield* hosted.host.submit({ job: "closed", instanceId: "c2", config: {} })).toEqual({ instanceId: "c2" })
      })
    ))

  it("R-WIRE-4 an overridable key is applied: taskRetries submitted as 2 runs a failing task three times", () =>
    withHost(({ host }) =>
      Effect.gen(function* () {
        const { instanceId } = yield* host.submit({ job: "failing", config: { taskRetries: 2 } })
        const outcome = yield* Effect.flatMap(host.tracker(instanceId), (tracker) => tracker.outcome)
        expect(outcome.ok).toBe(false)
        expect(attempts.get(instanceId)).toBe(3)
        // Without the override the job's own taskRetries (0) holds.
        const plain = yield* host.submit({ job: "failing" })
        yield* Effect.flatMap(host.tracker(plain.instanceId), (tracker) => tracker.outcome)
        expect(attempts.get(plain.instanceId)).toBe(1)
      })
    ))

  it("R-WIRE-4 a limit that sizes memory or work may be lowered at submit, never raised above deployment defaults + job config", () =>
    withHost((hosted) =>
      Effect.gen(function* () {
        // The job's 5000, not the default 100000, is the ceiling.
        const raised = yield* refusal(hosted, { job: "held", instanceId: "r1", config: { maxWaitingTasks: 5_001 } })
        expect(raised.reason).toBe("bad-input")
        expect(raised.message).toContain("maxWaitingTasks 5001 is above the job's 5000")
        // The deployment's 512, under the job's config, is the ceiling of maxInFlight (the default is 1024).
        const deployed = yield* refusal(hosted, { job: "held", instanceId: "r2", config: { maxInFlight: 1_024 } })
        expect(deployed.message).toContain("maxInFlight 1024 is above the job's 512")
        // null is unlimited: above the job's 8 workers.
        const unlimited = yield* refusal(hosted, { job: "held", instanceId: "r3", config: { maxWorkers: null } })
        expect(unlimited.message).toContain("maxWorkers null (unlimited) is above the job's 8")

        const lowered = { maxWaitingTasks: 10, dispatchBatchSize: 64, maxWorkers: 2, maxInFlight: 100 }
        yield* hosted.host.submit({ job: "held", instanceId: "low", config: lowered })
        expect(configOf(hosted, "low")).toMatchObject(lowered)
        expect((yield* hosted.store.load("low"))?.instance.config).toMatchObject(lowered)
      })
    ))

  it("R-WIRE-4 frequent is never set at submit, even by a job that lists it; defineJob refuses to list it", () =>
    withHost((hosted) =>
      Effect.gen(function* () {
        const error = yield* refusal(hosted, {
          job: "scheduled",
          instanceId: "s1",
          config: { frequent: { mode: "fixedRate", everyMs: 50 } }
        })
        expect(error.message).toContain("a submit never sets frequent")
        yield* refusal(hosted, { job: "scheduled", instanceId: "s2", config: { frequent: null } })
        expect(() => defineJob({ ...closed, overridable: ["frequent"] })).toThrow(/cannot list frequent/)
        expect(() => defineJob({ ...closed, overridable: ["taskRetires" as keyof JobConfig] })).toThrow(
          /overridable names no config key: "taskRetires"/
        )
      })
    ))

  it("R-WIRE-4 over HTTP a refused override answers 400 naming the key and stores nothing; an allowed one answers 200", () =>
    withHost((hosted) =>
      Effect.gen(function* () {
        const before = yield* snapshot(hosted)
        for (const config of [{ ackTimeout: 5 }, { maxWaitingTasks: 6_000 }]) {
          const refused = yield* post(hosted.app, { job: "held", instanceId: "w1", config })
          expect(refused.status).toBe(400)
          expect(refused.body).toMatchObject({ error: { tag: "RejectedError", reason: "bad-input" } })
          expect(JSON.stringify(refused.body)).toContain(Object.keys(config)[0])
        }
        const schedule = yield* post(hosted.app, { job: "scheduled", config: { frequent: null } })
        expect(schedule.status).toBe(400)
        expect(yield* snapshot(hosted)).toEqual(before)
        expect(yield* hosted.store.load("w1")).toBeUndefined()

        const accepted = yield* post(hosted.app, { job: "held", instanceId: "w2", config: { maxWaitingTasks: 4_000 } })
        expect(accepted).toEqual({ status: 200, body: { instanceId: "w2" } })
        expect(configOf(hosted, "w2")?.maxWaitingTasks).toBe(4_000)
      })
    ))

  it("R-WIRE-4 past maxLiveInstances a new submit is refused and stores nothing; resubmitting a live id answers it", () =>
    withHost(
      (hosted) =>
        Effect.gen(function* () {
          const { host, app } = hosted
          yield* host.submit({ job: "held", instanceId: "a" })
          yield* host.submit({ job: "held", instanceId: "b" })
          const error = yield* refusal(hosted, { job: "held", instanceId: "c" })
          expect(error.reason).toBe("too-many-instances")
          expect(error.message).toContain("maxLiveInstances 2")
          expect(yield* host.submit({ job: "held", instanceId: "a" })).toEqual({ instanceId: "a" })

          const before = yield* snapshot(hosted)
          const refused = yield* post(app, { job: "held", instanceId: "c" })
          expect(refused.status).toBe(429)
          expect(refused.body).toMatchObject({ error: { tag: "RejectedError", reason: "too-many-instances" } })
          expect(yield* snapshot(hosted)).toEqual(before)
          expect(yield* post(app, { job: "held", instanceId: "b" })).toEqual({ status: 200, body: { instanceId: "b" } })

          // Concurrent submits cannot pass the cap together.
          yield* host.kill("a", "make room")
          yield* waitUntil(() => host.live("a") === undefined, "instance a released")
          const raced = yield* Effect.all(
            ["d", "e", "f"].map((instanceId) => Effect.result(host.submit({ job: "held", instanceId }))),
            { concurrency: "unbounded" }
          )
          expect(raced.filter((result) => result._tag === "Success")).toHaveLength(1)
          expect(host.instances()).toHaveLength(2)

          // The host's own start is not held to the cap.
          yield* host.start(held, { instanceId: "own" })
          expect(host.instances()).toHaveLength(3)
        }),
      { maxLiveInstances: 2 }
    ))

  /** A valid value for every config key. */
  const arbitraryOf: { readonly [K in keyof JobConfig]: fc.Arbitrary<JobConfig[K]> } = {
    dispatchBatchSize: fc.integer({ min: 1, max: 128 }),
    ackTimeout: fc.integer({ min: 0, max: 120_000 }),
    maxRedeliveries: fc.nat(10),
    taskRetries: fc.nat(5),
    retryBackoff: fc.oneof(
      fc.record({ kind: fc.constant("fixed" as const), ms: fc.nat(5_000) }),
      fc.record({
        kind: fc.constant("exponential" as const),
        baseMs: fc.nat(5_000),
        maxMs: fc.nat(60_000),
        jitter: fc.constantFrom(0, 0.25, 1)
      })
    ),
    maxTaskBodyBytes: fc.integer({ min: 1, max: 128 * 1024 }),
    maxResultBytes: fc.integer({ min: 1, max: 2 * 1024 * 1024 }),
    maxWaitingTasks: fc.integer({ min: 1, max: 10_000 }),
    maxContextBytes: fc.integer({ min: 1, max: 16 * 1024 }),
    progressInterval: fc.integer({ min: 1_000, max: 60_000 }),
    // Timers far off, so an accepted instance is still live when it is looked at.
    instanceTimeout: fc.option(fc.integer({ min: 600_000, max: 6_000_000 })),
    heartbeatInterval: fc.integer({ min: 1_000, max: 10_000 }),
    workerTimeout: fc.integer({ min: 10_000, max: 60_000 }),
    queueAllowance: fc.nat(512),
    maxWorkerSlots: fc.integer({ min: 1, max: 2_048 }),
    routing: fc.constantFrom("round-robin", "least-loaded"),
    localWorker: fc.constantFrom("include", "exclude"),
    dispatchRate: fc.constantFrom(null, "500/s", "30/m", "100"),
    dispatchMode: fc.constantFrom("push", "pull"),
    maxInFlight: fc.integer({ min: 1, max: 2_048 }),
    failover: fc.boolean(),
    runReduceIfFail: fc.boolean(),
    maxReportedErrors: fc.nat(20),
    maxWorkers: fc.option(fc.integer({ min: 1, max: 16 })),
    frequent: fc.option(
      fc.record({ mode: fc.constantFrom("fixedRate", "fixedDelay"), everyMs: fc.integer({ min: 50, max: 60_000 }) })
    ),
    maxConcurrentSubInstances: fc.integer({ min: 1, max: 4 })
  }
  const keys = Object.keys(arbitraryOf) as Array<keyof JobConfig>
  /** Every key but these: a random submit often names one it may not set. */
  const open = defineJob({
    ...held,
    name: "open",
    config: { ...held.config, maxConcurrentSubInstances: 2 },
    overridable: keys.filter((key) => !["routing", "failover", "frequent"].includes(key))
  })
  // Written out again here, not imported, so the test also checks the list in host/submit-limits.ts.
  const lowerOnly: ReadonlyArray<keyof JobConfig> = [
    "dispatchBatchSize",
    "maxWaitingTasks",
    "maxTaskBodyBytes",
    "maxResultBytes",
    "maxContextBytes",
    "queueAllowance",
    "maxInFlight",
    "maxWorkerSlots",
    "maxReportedErrors",
    "maxConcurrentSubInstances",
    "maxWorkers"
  ]
  const ceiling = resolveConfigSync({ ...deployment, ...open.config })
  const allowed = (overrides: Partial<Record<keyof JobConfig, unknown>>): boolean =>
    Object.entries(overrides).every(([key, value]) => {
      if (!open.overridable?.includes(key as keyof JobConfig)) return false
      if (!lowerOnly.includes(key as keyof JobConfig)) return true
      const limit = ceiling[key as keyof JobConfig]
      return limit === null || (value !== null && (value as number) <= (limit as number))
    })

  /** A few keys at a time, so accepted submits are common, with a random valid value each. */
  const overridesArb = fc
    .subarray(keys, { maxLength: 4 })
    .chain((chosen) =>
      fc.record(
        Object.fromEntries(chosen.map((key) => [key, arbitraryOf[key]])) as Record<string, fc.Arbitrary<unknown>>
      )
    ) as fc.Arbitrary<Partial<Record<keyof JobConfig, unknown>>>

  it("R-WIRE-4 property: random overrides are accepted with config = deployment + job + overrides, or refused with nothing stored", () =>
    fc.assert(
      fc.asyncProperty(overridesArb, (overrides) =>
        withHost(
          (hosted) =>
            Effect.gen(function* () {
              const before = yield* snapshot(hosted)
              const submitted = yield* Effect.result(
                hosted.host.submit({ job: "open", instanceId: "p", config: overrides as JobConfigOverrides })
              )
              if (submitted._tag === "Success") {
                expect(submitted.success).toEqual({ instanceId: "p" })
                const expected = resolveConfigSync({ ...deployment, ...open.config, ...overrides })
                expect(configOf(hosted, "p")).toEqual(expected)
                expect((yield* hosted.store.load("p"))?.instance.config).toEqual(expected)
              } else {
                expect(submitted.failure).toBeInstanceOf(RejectedError)
                expect((submitted.failure as RejectedError).reason).toBe("bad-input")
                expect(yield* snapshot(hosted)).toEqual(before)
                expect(yield* hosted.store.load("p")).toBeUndefined()
              }
              expect(submitted._tag === "Success").toBe(allowed(overrides))
            }),
          { jobs: [open] }
        )
      ),
      { numRuns: 100 }
    ))
})
