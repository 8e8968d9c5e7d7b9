import { Effect } from "effect"
import type { Hono } from "hono"
import { describe, expect, it } from "vitest"
import { defineJob } from "../api/job.ts"
import type { Job } from "../model/job.ts"
import { makeMemoryStore } from "../memory/store.ts"
import { resolveConfigSync, type JobConfigOverrides } from "../model/config.ts"
import { RejectedError, TransportError } from "../model/errors.ts"
import { TaskStore } from "../ports/task-store.ts"
import { Transport } from "../ports/transport.ts"
import { startTracker, type Tracker } from "../tracker/tracker.ts"
import type { TrackerLink } from "../worker/runtime.ts"
import { startWorker } from "../worker/runtime.ts"
import { httpTrackerLink, httpWorkerTransport } from "./client.ts"
import { workerCredential } from "./credentials.ts"
import { makeTrackerApp, type TrackerApi } from "./tracker-app.ts"
import { makeWorkerApp } from "./worker-app.ts"

const token = "s3cret"

const hostOf = (tracker: Tracker): TrackerApi => ({
  tracker: (id) =>
    id === tracker.instanceId
      ? Effect.succeed(tracker)
      : Effect.fail(new RejectedError({ reason: "unknown-instance", message: `no instance ${id}` })),
  submit: () => Effect.fail(new RejectedError({ reason: "bad-input", message: "not here" })),
  registerWorker: () => Effect.succeed({ instances: [tracker.instanceId] })
})

/**
 * A tracker and two workers over the HTTP protocol (hono's in-memory requests);
 * `wrap` may spoil the workers' links.
 */
const runOverHttp = (
  job: Job,
  options: {
    readonly mapWaitMs?: number
    readonly clientTimeoutMs?: number
    readonly wrap?: (link: TrackerLink) => TrackerLink
  }
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const workerApps = new Map<string, Hono>()
      const transport = httpWorkerTransport({
        fetch: async (url, init) => {
          const app = workerApps.get(new URL(url).host)
          if (app === undefined) throw new Error(`no worker at ${url}`)
          return app.request(url, init)
        },
        workerAddress: (id) => ({ url: `http://${id}`, key: token }),
        deliverOutcome: () => Effect.void
      })
      const tracker = yield* startTracker({
        instanceId: "maps-1",
        job: job.name,
        kind: job.kind,
        config: resolveConfigSync(job.config),
        params: "null",
        localWorkerId: "local"
      }).pipe(Effect.provideService(TaskStore, makeMemoryStore()), Effect.provideService(Transport, transport))
      const trackerApp = makeTrackerApp(hostOf(tracker), {
        token,
        ...(options.mapWaitMs === undefined ? {} : { mapWaitMs: options.mapWaitMs })
      })
      for (const id of ["local", "w1"]) {
        // Each worker calls with its own credential (R-WIRE-4).
        const http = httpTrackerLink({
          baseUrl: "http://tracker",
          token: yield* Effect.promise(() => workerCredential(token, id)),
          fetch: (url, init) => Promise.resolve(trackerApp.request(url, init)),
          ...(options.clientTimeoutMs === undefined ? {} : { timeoutMs: options.clientTimeoutMs })
        })
        const connect = (instanceId: string) => (options.wrap ?? ((link: TrackerLink) => link))(http(instanceId))
        const worker = yield* startWorker({ id, slots: 4, jobs: () => job, connect, heartbeatInterval: 50 })
        workerApps.set(id, makeWorkerApp(worker, { token }))
        yield* Effect.ignore(worker.join(tracker.instanceId))
      }
      return yield* tracker.outcome
    })
  )

/** Root maps `calls` calls of `per` items; every child sleeps a little; reduce lists what it saw. */
const mapper = (config: JobConfigOverrides, calls: number, per: number, root?: (attempt: number) => void) =>
  defineJob({
    name: "mapper",
    kind: "mapReduce",
    config: { heartbeatInterval: 50, ...config },
    process: async (task, ctx) => {
      if (task.isRoot) {
        root?.(task.attempt)
        for (let c = 0; c < calls; c++)
          await ctx.map(
            Array.from({ length: per }, (_, i) => c * per + i),
            "child"
          )
        return "mapped"
      }
      await new Promise((resolve) => setTimeout(resolve, 2))
      return task.body
    },
    reduce: async (results) => {
      const seen: number[] = []
      for await (const r of results) if (r.name === "child") seen.push(r.result as number)
      return seen.sort((a, b) => a - b)
    }
  })

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

describe("map calls over an unreliable link", () => {
  it("R-MAP-6 R-MAP-4 a map call suspended by back-pressure longer than the client's timeout is renewed, never times out, and creates its children once", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        // 10 calls of 40 items against a bound of 20 waiting tasks:
        // most calls wait far longer than the client's 150 ms.
        const outcome = yield* runOverHttp(mapper({ maxWaitingTasks: 20 }, 10, 40), {
          mapWaitMs: 40,
          clientTimeoutMs: 150
        })
        expect(outcome.ok).toBe(true)
        expect(JSON.parse(outcome.result)).toEqual(range(400))
        expect(outcome.counts).toEqual({ created: 402, succeeded: 402, failed: 0 })
      })
    ))

  it("R-MAP-6 map calls whose answers are lost are sent again by the runtime: no error in user code, no child lost or created twice", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        let calls = 0
        // Every other map call takes effect at the tracker, but its answer never reaches the worker.
        const loseEveryOtherAnswer = (link: TrackerLink): TrackerLink => ({
          ...link,
          map: (request) =>
            link
              .map(request)
              .pipe(
                Effect.flatMap((created) =>
                  calls++ % 2 === 0
                    ? Effect.fail(new TransportError({ reason: "timeout", message: "answer lost" }))
                    : Effect.succeed(created)
                )
              )
        })
        const outcome = yield* runOverHttp(mapper({}, 6, 7), { wrap: loseEveryOtherAnswer })
        expect(outcome.ok).toBe(true)
        expect(JSON.parse(outcome.result)).toEqual(range(42))
        expect(outcome.counts).toEqual({ created: 44, succeeded: 44, failed: 0 })
      })
    ))

  it("R-MAP-6 R-MAP-2 a mapper retried after calls that never arrived maps again: no child lost, none twice", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        // Attempt 0's third and later calls never arrive (refused on the way, repeatedly): the root fails and is
        // retried; attempt 1 maps everything again and must end with all 30 children, each once.
        const attempts: number[] = []
        const dropLaterCalls = (link: TrackerLink): TrackerLink => ({
          ...link,
          map: (request) =>
            request.attempt === 0 && (request.from ?? 0) >= 10
              ? Effect.fail(new RejectedError({ reason: "bad-input", message: "refused on the way" }))
              : link.map(request)
        })
        const outcome = yield* runOverHttp(
          mapper({ taskRetries: 1, retryBackoff: { kind: "fixed", ms: 10 } }, 6, 5, (attempt) =>
            attempts.push(attempt)
          ),
          { wrap: dropLaterCalls }
        )
        expect(attempts).toEqual([0, 1])
        expect(outcome.ok).toBe(true)
        expect(JSON.parse(outcome.result)).toEqual(range(30))
        expect(outcome.counts).toEqual({ created: 32, succeeded: 32, failed: 0 })
      })
    ))

  it("R-DISP-9 pull mode over HTTP: the runtime's workers learn the mode from the heartbeat answer, pull, and the instance ends right", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const outcome = yield* runOverHttp(mapper({ dispatchMode: "pull", maxInFlight: 8 }, 4, 25), {})
        expect(outcome.ok).toBe(true)
        expect(JSON.parse(outcome.result)).toEqual(range(100))
        expect(outcome.counts).toEqual({ created: 102, succeeded: 102, failed: 0 })
      })
    ))
})
