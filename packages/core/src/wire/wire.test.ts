import { Effect } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { defineJob } from "../api/job.ts"
import { makeMemoryStore } from "../memory/store.ts"
import { resolveConfigSync } from "../model/config.ts"
import { RejectedError } from "../model/errors.ts"
import { TaskStore } from "../ports/task-store.ts"
import { Transport } from "../ports/transport.ts"
import { startTracker, type Tracker } from "../tracker/tracker.ts"
import { startWorker } from "../worker/runtime.ts"
import { encodeJson } from "./codec.ts"
import { httpTrackerLink, httpWorkerTransport } from "./client.ts"
import { workerCredential } from "./credentials.ts"
import { makeTrackerApp, type TrackerApi } from "./tracker-app.ts"
import { makeWorkerApp } from "./worker-app.ts"
import type { Hono } from "hono"

const token = "s3cret"
const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" }

/** Opened by a test that needs the instance held live with its root still running. */
let gate: Promise<void> = Promise.resolve()

/** Bytes in, bytes summed: proves bodies survive the JSON wire as bytes. */
const job = defineJob({
  name: "bytes",
  kind: "mapReduce",
  process: async (task, ctx) => {
    if (task.isRoot) {
      await gate
      return ctx.map(
        Array.from({ length: 300 }, (_, i) => new Uint8Array([i % 256, 1, 2])),
        "sum"
      )
    }
    const bytes = task.body as Uint8Array
    if (!(bytes instanceof Uint8Array)) throw new Error("body is not bytes")
    return bytes.reduce((a, b) => a + b, 0)
  },
  reduce: async (results) => {
    let total = 0
    for await (const result of results) if (result.name === "sum") total += result.result as number
    return total
  }
})

const hostOf = (tracker: Tracker): TrackerApi => ({
  tracker: (id) =>
    id === tracker.instanceId
      ? Effect.succeed(tracker)
      : Effect.fail(new RejectedError({ reason: "unknown-instance", message: `no instance ${id}` })),
  submit: () => Effect.fail(new RejectedError({ reason: "bad-input", message: "not here" })),
  registerWorker: () => Effect.succeed({ instances: [tracker.instanceId] })
})

/** A tracker and 3 workers whose every message crosses the HTTP protocol through hono's in-memory request. */
const cluster = Effect.gen(function* () {
  const store = makeMemoryStore()
  const workerApps = new Map<string, Hono>()
  const transport = httpWorkerTransport({
    fetch: (url, init) => {
      const host = new URL(url).host
      const app = workerApps.get(host)
      return app === undefined
        ? Promise.reject(new Error(`no worker at ${host}`))
        : Promise.resolve(app.request(url, init))
    },
    workerAddress: (id) => ({ url: `http://${id}`, key: token }),
    deliverOutcome: () => Effect.void
  })
  const tracker = yield* startTracker({
    instanceId: "wire-1",
    job: job.name,
    kind: job.kind,
    config: resolveConfigSync({ heartbeatInterval: 50, maxTaskBodyBytes: 1024 }),
    params: "null",
    localWorkerId: "local"
  }).pipe(Effect.provideService(TaskStore, store), Effect.provideService(Transport, transport))
  const trackerApp = makeTrackerApp(hostOf(tracker), { token, maxBodyBytes: 64 * 1024 })
  for (const id of ["local", "w1", "w2"]) {
    // Each worker calls with its own credential (R-WIRE-4).
    const credential = yield* Effect.promise(() => workerCredential(token, id))
    const connect = httpTrackerLink({
      baseUrl: "http://tracker",
      token: credential,
      fetch: (url, init) => Promise.resolve(trackerApp.request(url, init))
    })
    const worker = yield* startWorker({ id, slots: 4, jobs: () => job, connect, heartbeatInterval: 50 })
    workerApps.set(id, makeWorkerApp(worker, { token }))
    yield* Effect.ignore(worker.join(tracker.instanceId))
  }
  return { store, tracker, trackerApp }
})

const post = (app: Hono, path: string, body: string, headers: Record<string, string> = auth) =>
  Promise.resolve(app.request(`http://tracker${path}`, { method: "POST", headers, body }))

/** The headers of worker w1's calls: its own credential (R-WIRE-4). */
const asW1 = Effect.promise(async () => ({
  authorization: `Bearer ${await workerCredential(token, "w1")}`,
  "content-type": "application/json"
}))

describe("wire protocol", () => {
  it("runs a mapReduce whose every message crosses the HTTP codecs, bytes bodies included", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { tracker } = yield* cluster
          const outcome = yield* tracker.outcome
          let expected = 0
          for (let i = 0; i < 300; i++) expected += (i % 256) + 3
          expect(outcome).toMatchObject({ ok: true, result: String(expected) })
        })
      )
    ))

  it("R-WIRE-1 a malformed message answers 400 with the path of the bad field and changes nothing", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { trackerApp, store } = yield* cluster
          const snapshot = () => encodeJson([...store.instances.entries()].map(([id, s]) => [id, s.instance, s.bySeq]))
          // Wait until the receipts of the batches in flight are stored: from then on nothing moves by itself.
          let before = snapshot()
          for (let settled = 0; settled < 3; ) {
            yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
            const now = snapshot()
            settled = now === before ? settled + 1 : 0
            before = now
          }
          const w1 = yield* asW1
          const bad = { instanceId: "wire-1", workerId: "w1", reports: [{ taskId: "0", attempt: 0, status: 9 }] }
          const response = yield* Effect.promise(() =>
            post(trackerApp, "/v1/instances/wire-1/reports", JSON.stringify(bad), w1)
          )
          expect(response.status).toBe(400)
          const body = (yield* Effect.promise(() => response.json())) as { error: { path: string; reason: string } }
          expect(body.error).toMatchObject({ reason: "bad-field", path: '["reports"][0]["status"]' })
          const notJson = yield* Effect.promise(() => post(trackerApp, "/v1/instances/wire-1/map", "{nope", w1))
          expect(notJson.status).toBe(400)
          const otherId = yield* Effect.promise(() =>
            post(
              trackerApp,
              "/v1/instances/wire-1/heartbeat",
              JSON.stringify({
                instanceId: "else",
                workerId: "w1",
                slots: 1,
                freeSlots: 1,
                queueLength: 0,
                idle: true
              }),
              w1
            )
          )
          expect(otherId.status).toBe(400)
          expect(snapshot() === before).toBe(true)
        })
      )
    ))

  it("R-WIRE-1 an unknown instance or task answers 404", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          let open = () => {}
          gate = new Promise((resolve) => (open = resolve))
          const { trackerApp, tracker } = yield* cluster
          // Held live, so an unknown task is unknown, not of a finished instance.
          while (((yield* tracker.progress).byName["ROOT"]?.running ?? 0) === 0) yield* Effect.sleep(5)
          yield* Effect.addFinalizer(() => Effect.sync(open))
          const w1 = yield* asW1
          const unknownInstance = yield* Effect.promise(() =>
            post(
              trackerApp,
              "/v1/instances/nope/map",
              JSON.stringify({ instanceId: "nope", workerId: "w1", taskId: "0", attempt: 0, name: "x", bodies: [] }),
              w1
            )
          )
          expect(unknownInstance.status).toBe(404)
          const unknownTask = yield* Effect.promise(() =>
            post(
              trackerApp,
              "/v1/instances/wire-1/map",
              JSON.stringify({
                instanceId: "wire-1",
                workerId: "w1",
                taskId: "0.999",
                attempt: 0,
                name: "x",
                bodies: ["1"]
              }),
              w1
            )
          )
          expect(unknownTask.status).toBe(404)
          expect(
            ((yield* Effect.promise(() => unknownTask.json())) as { error: { reason: string } }).error.reason
          ).toBe("unknown-task")
        })
      )
    ))

  it("R-WIRE-2 no token answers 401, a wrong one too, an oversized body 413; nothing changes", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { trackerApp, tracker } = yield* cluster
          const report = JSON.stringify({
            instanceId: "wire-1",
            workerId: "local",
            reports: [{ taskId: "0", attempt: 0, status: 6, result: "1" }]
          })
          const none = yield* Effect.promise(() =>
            post(trackerApp, "/v1/instances/wire-1/reports", report, { "content-type": "application/json" })
          )
          expect(none.status).toBe(401)
          const wrong = yield* Effect.promise(() =>
            post(trackerApp, "/v1/instances/wire-1/reports", report, {
              authorization: "Bearer s3creT",
              "content-type": "application/json"
            })
          )
          expect(wrong.status).toBe(401)
          const huge = yield* Effect.promise(() => post(trackerApp, "/v1/instances/wire-1/map", "x".repeat(70 * 1024)))
          expect(huge.status).toBe(413)
          const outcome = yield* tracker.outcome
          expect(outcome.ok).toBe(true)
        })
      )
    ))

  it("R-WIRE-3 random bodies posted to every endpoint never get a 5xx and never change what is stored", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          let open = () => {}
          gate = new Promise((resolve) => (open = resolve))
          const { trackerApp, store, tracker } = yield* cluster
          // Held live: the root runs on "local" and waits; only the random traffic could change anything now.
          while (((yield* tracker.progress).byName["ROOT"]?.running ?? 0) === 0) yield* Effect.sleep(5)
          const snapshot = () => encodeJson([...store.instances.entries()].map(([id, s]) => [id, s.instance, s.bySeq]))
          const before = snapshot()
          const endpoints = ["reports", "map", "heartbeat", "pull", "context", "kill"].map(
            (call) => `/v1/instances/wire-1/${call}`
          )
          endpoints.push("/v1/instances", "/v1/workers", "/v1/instances/nope/reports")
          const body = fc.oneof(
            fc.string(),
            fc.json(),
            fc
              .record({
                instanceId: fc.oneof(fc.constant("wire-1"), fc.string()),
                workerId: fc.string(),
                taskId: fc.string(),
                attempt: fc.oneof(fc.integer(), fc.double()),
                reports: fc.array(
                  fc.record({ taskId: fc.string(), attempt: fc.integer(), status: fc.integer({ min: -2, max: 9 }) })
                ),
                bodies: fc.array(fc.oneof(fc.string(), fc.constant({ $bytes: "!!" })))
              })
              .map((value) => JSON.stringify(value))
          )
          yield* Effect.promise(() =>
            fc.assert(
              fc.asyncProperty(fc.constantFrom(...endpoints), body, async (path, text) => {
                const response = await post(trackerApp, path, text)
                expect(response.status).toBeLessThan(500)
              }),
              { numRuns: 300 }
            )
          )
          expect(snapshot()).toBe(before)
          open()
          const outcome = yield* tracker.outcome
          expect(outcome.ok).toBe(true)
        })
      )
    ))
})
