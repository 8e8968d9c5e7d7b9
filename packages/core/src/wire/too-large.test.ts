import { Effect } from "effect"
import type { Hono } from "hono"
import { describe, expect, it } from "vitest"
import { defineJob } from "../api/job.ts"
import { makeMemoryStore } from "../memory/store.ts"
import { resolveConfigSync } from "../model/config.ts"
import { RejectedError } from "../model/errors.ts"
import { TaskStore } from "../ports/task-store.ts"
import { Transport } from "../ports/transport.ts"
import { startTracker, type Tracker } from "../tracker/tracker.ts"
import { startWorker } from "../worker/runtime.ts"
import { httpTrackerLink, httpWorkerTransport } from "./client.ts"
import { workerCredential } from "./credentials.ts"
import { makeTrackerApp, type TrackerApi } from "./tracker-app.ts"
import { makeWorkerApp } from "./worker-app.ts"

const token = "s3cret"
/** The workers take bodies up to this; the tracker's side takes the default. */
const WORKER_BODY_LIMIT = 8 * 1024

const hostOf = (tracker: Tracker): TrackerApi => ({
  tracker: (id) =>
    id === tracker.instanceId
      ? Effect.succeed(tracker)
      : Effect.fail(new RejectedError({ reason: "unknown-instance", message: `no instance ${id}` })),
  submit: () => Effect.fail(new RejectedError({ reason: "bad-input", message: "not here" })),
  registerWorker: () => Effect.succeed({ instances: [tracker.instanceId] })
})

/** Items of quotes and backslashes: their JSON escaping doubles them, and the batch's JSON doubles them again. */
const item = (i: number, length: number) => `${i}:${'"\\'.repeat(length / 2)}`

const job = (huge: boolean) =>
  defineJob({
    name: "escaped",
    kind: "mapReduce",
    config: { runReduceIfFail: true, heartbeatInterval: 50 },
    process: async (task, ctx) => {
      if (task.isRoot) {
        const items = Array.from({ length: 40 }, (_, i) => item(i, 600))
        // One item alone larger than any message the workers take, once escaped twice.
        if (huge) items.push(item(99, 6_000))
        return ctx.map(items, "text")
      }
      return (task.body as string).length
    },
    reduce: async (results) => {
      const seen: Array<{ id: string; ok: boolean; reason: string | undefined }> = []
      for await (const r of results)
        if (r.name === "text") seen.push({ id: r.taskId, ok: r.ok, reason: r.error?.reason })
      return seen
    }
  })

const run = (huge: boolean) =>
  Effect.scoped(
    Effect.gen(function* () {
      const workerApps = new Map<string, Hono>()
      const seenStatuses: number[] = []
      const transport = httpWorkerTransport({
        fetch: async (url, init) => {
          const app = workerApps.get(new URL(url).host)
          if (app === undefined) throw new Error(`no worker at ${url}`)
          const response = await app.request(url, init)
          seenStatuses.push(response.status)
          return response
        },
        workerAddress: (id) => ({ url: `http://${id}`, key: token }),
        deliverOutcome: () => Effect.void
      })
      const definition = job(huge)
      const tracker = yield* startTracker({
        instanceId: "escaped-1",
        job: definition.name,
        kind: definition.kind,
        config: resolveConfigSync(definition.config),
        params: "null",
        localWorkerId: "local"
      }).pipe(Effect.provideService(TaskStore, makeMemoryStore()), Effect.provideService(Transport, transport))
      const trackerApp = makeTrackerApp(hostOf(tracker), { token })
      for (const id of ["local", "w1"]) {
        // Each worker calls with its own credential (R-WIRE-4).
        const connect = httpTrackerLink({
          baseUrl: "http://tracker",
          token: yield* Effect.promise(() => workerCredential(token, id)),
          fetch: (url, init) => Promise.resolve(trackerApp.request(url, init))
        })
        const worker = yield* startWorker({ id, slots: 8, jobs: () => definition, connect, heartbeatInterval: 50 })
        workerApps.set(id, makeWorkerApp(worker, { token, maxBodyBytes: WORKER_BODY_LIMIT }))
        yield* Effect.ignore(worker.join(tracker.instanceId))
      }
      const outcome = yield* tracker.outcome
      return { outcome, seenStatuses }
    })
  )

describe("messages too large for the receiver", () => {
  it("R-DISP-10 a batch over the worker's body limit (bodies whose escaping doubles) is split until it fits; every task runs once", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const { outcome, seenStatuses } = yield* run(false)
        expect(seenStatuses).toContain(413)
        expect(outcome.ok).toBe(true)
        const seen = JSON.parse(outcome.result) as Array<{ id: string; ok: boolean }>
        expect(seen).toHaveLength(40)
        expect(seen.every((entry) => entry.ok)).toBe(true)
        expect(outcome.counts).toEqual({ created: 42, succeeded: 42, failed: 0 })
      })
    ))

  it("R-DISP-10 a single task too large for any message fails alone with reason too-large; the rest run, the instance does not cycle", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const { outcome } = yield* run(true)
        expect(outcome.ok).toBe(true)
        const seen = JSON.parse(outcome.result) as Array<{ id: string; ok: boolean; reason: string | undefined }>
        expect(seen.filter((entry) => !entry.ok)).toEqual([{ id: "0.41", ok: false, reason: "too-large" }])
        expect(seen.filter((entry) => entry.ok)).toHaveLength(40)
        expect(outcome.errors).toHaveLength(1)
        expect(outcome.errors[0]).toMatchObject({ taskId: "0.41", error: { reason: "too-large" } })
      })
    ))
})
