import { defineJob, type Job, type Progress } from "@taskfold/core"
import { makeMemoryStore, type TaskBatch, type WorkerHandle } from "@taskfold/core/adapter"
import { makeTrackerApp, makeTrackerServer, makeWorkerApp, workerCredential } from "@taskfold/core/wire"
import { Effect, Exit, Scope } from "effect"
import type { Hono } from "hono"
import { afterEach, describe, expect, it } from "vitest"

const SECRET = "bounded-peers-secret-0123456789"
const KEY = "k".repeat(32)
const JSON_TYPE = { "content-type": "application/json" }

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** Sums 1..parts over `parts` sub-tasks, each `partMs` long; the root maps once `gate` opens. */
const sum = (
  config: NonNullable<Job["config"]>,
  partMs = 0,
  gate: Promise<void> = Promise.resolve(),
  parts = 200
): Job =>
  defineJob({
    name: "peers-sum",
    kind: "mapReduce",
    config,
    process: async (task, ctx) => {
      if (task.isRoot) {
        await gate
        return ctx.map(
          Array.from({ length: parts }, (_, i) => i + 1),
          "part"
        )
      }
      await sleep(partMs)
      return task.body as number
    },
    reduce: async (results) => {
      let total = 0
      for await (const result of results) if (result.name === "part" && result.ok) total += result.result as number
      return total
    }
  })

interface Tracker {
  readonly app: Hono
  /** Calls from the tracker to each worker URL's host. */
  readonly calls: Map<string, number>
}

/**
 * A tracker server behind its HTTP app, on a memory store. Calls it makes to http://sink/ never get an answer
 * (they end when the tracker gives them up); calls to http://fake/ reach `fake`, if given.
 */
const startTracker = async (
  job: Job,
  options: { fake?: WorkerHandle; registrationTtl?: number; maxRegistrations?: number; previous?: string[] } = {}
): Promise<Tracker> => {
  const calls = new Map<string, number>()
  const fakeApp = options.fake === undefined ? undefined : makeWorkerApp(options.fake, { token: KEY })
  const scope = Effect.runSync(Scope.make())
  cleanups.push(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  const server = await Effect.runPromise(
    makeTrackerServer({
      token: SECRET,
      jobs: new Map([[job.name, job]]),
      store: makeMemoryStore(),
      sendTimeoutMs: 200,
      ...(options.registrationTtl === undefined ? {} : { registrationTtl: options.registrationTtl }),
      ...(options.maxRegistrations === undefined ? {} : { maxRegistrations: options.maxRegistrations }),
      fetch: (url, init) => {
        const host = new URL(url).host
        calls.set(host, (calls.get(host) ?? 0) + 1)
        if (host === "fake" && fakeApp !== undefined) return Promise.resolve(fakeApp.request(url, init))
        // A sink: takes the connection, never answers.
        return new Promise((_resolve, reject) =>
          init.signal?.addEventListener("abort", () => reject(init.signal?.reason))
        )
      }
    }).pipe(Scope.provide(scope))
  )
  const app = makeTrackerApp(server.host, {
    token: SECRET,
    ...(options.previous ? { previousTokens: options.previous } : {})
  })
  return { app, calls }
}

const call = (app: Hono, method: string, path: string, bearer: string, body?: unknown) =>
  Promise.resolve(
    app.request(`http://tracker${path}`, {
      method,
      headers: { ...JSON_TYPE, authorization: `Bearer ${bearer}` },
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) })
    })
  )

const register = async (app: Hono, workerId: string, url: string) =>
  call(app, "POST", "/v1/workers", await workerCredential(SECRET, workerId), {
    workerId,
    url,
    key: KEY,
    slots: 65_536,
    jobs: ["peers-sum"]
  })

/** Heartbeats as `workerId` every 50 ms, announcing the most slots the protocol allows, until the test ends. */
const keepHeartbeating = async (app: Hono, instanceId: string, workerId: string) => {
  const credential = await workerCredential(SECRET, workerId)
  const beat = { instanceId, workerId, slots: 65_536, freeSlots: 65_536, queueLength: 0, idle: false }
  const timer = setInterval(() => void call(app, "POST", `/v1/instances/${instanceId}/heartbeat`, credential, beat), 50)
  cleanups.push(async () => clearInterval(timer))
  const first = await call(app, "POST", `/v1/instances/${instanceId}/heartbeat`, credential, beat)
  expect(first.status).toBe(200)
}

const statusOf = async (app: Hono, instanceId: string): Promise<Progress> => {
  const response = await call(app, "GET", `/v1/instances/${instanceId}`, SECRET)
  return ((await response.json()) as { progress: Progress }).progress
}

describe("bounded peers (R-WIRE-3)", () => {
  it("R-WIRE-3 a registered sink that takes batches and never answers is marked unhealthy and probed; the job ends ok with the true sum", async () => {
    // One redelivery allowed: a sink given its announced share would fail most tasks twice over.
    const config = { heartbeatInterval: 100, workerTimeout: 10_000, ackTimeout: 2_000, maxRedeliveries: 1 }
    const job = sum(config, 2, Promise.resolve(), 1_000)
    const { app, calls } = await startTracker(job)
    expect((await register(app, "sink", "http://sink")).status).toBe(200)
    const submitted = await call(app, "POST", "/v1/instances", SECRET, { job: job.name, instanceId: "sunk" })
    expect(submitted.status).toBe(200)
    await keepHeartbeating(app, "sunk", "sink")
    let sawUnhealthy = false
    let progress = await statusOf(app, "sunk")
    for (let i = 0; i < 400 && progress.outcome === null; i++) {
      await sleep(25)
      progress = await statusOf(app, "sunk")
      if (progress.byWorker["sink"]?.unhealthy === true) sawUnhealthy = true
    }
    expect(progress.outcome).toMatchObject({ ok: true, result: "500500", counts: { created: 1_002, failed: 0 } })
    expect(sawUnhealthy).toBe(true)
    // The invitation, then a few probes: not the job.
    expect(calls.get("sink") ?? 0).toBeLessThan(10)
  })

  it("R-WIRE-3 a worker announcing 65,536 slots is given no more than maxWorkerSlots tasks", async () => {
    const batches: TaskBatch[] = []
    const fake: WorkerHandle = {
      id: "fake",
      join: () => Effect.void,
      deliver: (batch) => void batches.push(batch),
      stop: () => {},
      stats: () => ({ running: 0, queued: 0, completed: 0 })
    }
    let open = () => {}
    const gate = new Promise<void>((resolve) => (open = resolve))
    const config = { maxWorkerSlots: 8, queueAllowance: 0, localWorker: "exclude", heartbeatInterval: 100 } as const
    const job = sum(config, 0, gate)
    const { app } = await startTracker(job, { fake })
    expect((await register(app, "fake", "http://fake")).status).toBe(200)
    await call(app, "POST", "/v1/instances", SECRET, { job: job.name, instanceId: "greedy" })
    // The root maps once the worker has joined, so the local worker is not alone (R-DISP-5).
    await keepHeartbeating(app, "greedy", "fake")
    open()
    for (let i = 0; i < 200 && (await statusOf(app, "greedy")).byName["part"] === undefined; i++) await sleep(10)
    await sleep(300)
    const sent = batches.flatMap((batch) => batch.tasks.filter((task) => task.name === "part"))
    expect(sent).toHaveLength(8)
    expect((await statusOf(app, "greedy")).byName["part"]).toMatchObject({ waiting: 192 })
  })

  it("R-WIRE-3 registrations are capped and expire: past maxRegistrations one is refused (429), and taken once another expired", async () => {
    const { app } = await startTracker(sum({}), { registrationTtl: 150, maxRegistrations: 2 })
    expect((await register(app, "w1", "http://fake")).status).toBe(200)
    expect((await register(app, "w2", "http://fake")).status).toBe(200)
    const refused = await register(app, "w3", "http://fake")
    expect(refused.status).toBe(429)
    expect(((await refused.json()) as { error: { reason: string } }).error.reason).toBe("worker-limit")
    // A worker renewing its own registration is not a new one.
    expect((await register(app, "w1", "http://fake")).status).toBe(200)
    await sleep(200)
    expect((await register(app, "w3", "http://fake")).status).toBe(200)
  })

  it("R-WIRE-3 a registration naming too many jobs or a too long URL is refused with 400", async () => {
    const { app } = await startTracker(sum({}))
    const credential = await workerCredential(SECRET, "w1")
    const base = { workerId: "w1", url: "http://fake", key: KEY, slots: 4, jobs: ["peers-sum"] }
    const tooMany = await call(app, "POST", "/v1/workers", credential, { ...base, jobs: Array(257).fill("j") })
    expect(tooMany.status).toBe(400)
    const longUrl = await call(app, "POST", "/v1/workers", credential, {
      ...base,
      url: `http://fake/${"a".repeat(2_100)}`
    })
    expect(longUrl.status).toBe(400)
  })

  it("R-WIRE-3 a report message holds at most 4,096 reports and a heartbeat at most 64 KiB; nothing changes", async () => {
    const job = sum({ localWorker: "exclude" }, 0, new Promise(() => {}))
    const { app } = await startTracker(job)
    await call(app, "POST", "/v1/instances", SECRET, { job: job.name, instanceId: "big" })
    const credential = await workerCredential(SECRET, "w1")
    const reports = Array.from({ length: 4_097 }, (_, i) => ({
      taskId: `0.${i + 1}`,
      attempt: 0,
      status: 6,
      result: "1"
    }))
    const before = await statusOf(app, "big")
    const many = await call(app, "POST", "/v1/instances/big/reports", credential, {
      instanceId: "big",
      workerId: "w1",
      reports
    })
    expect(many.status).toBe(400)
    const beat = `{"instanceId":"big","workerId":"w1","slots":1,"freeSlots":1,"queueLength":0,"idle":false`
    const padded = `${beat}${" ".repeat(70_000)}}`
    const heavy = await call(app, "POST", "/v1/instances/big/heartbeat", credential, padded)
    expect(heavy.status).toBe(413)
    const after = await statusOf(app, "big")
    expect(after.byWorker["w1"]).toBeUndefined()
    expect(after.byName).toEqual(before.byName)
  })
})

describe("trust: results and rotation (R-WIRE-4)", () => {
  it("R-WIRE-4 results are the operator's and the instance's workers': a worker of another instance gets 403", async () => {
    const job = sum({}, 0, new Promise(() => {}))
    const { app } = await startTracker(job)
    await call(app, "POST", "/v1/instances", SECRET, { job: job.name, instanceId: "read" })
    await call(app, "POST", "/v1/instances", SECRET, { job: job.name, instanceId: "other" })
    const member = await workerCredential(SECRET, "w1")
    const beat = { instanceId: "read", workerId: "w1", slots: 1, freeSlots: 1, queueLength: 0, idle: false }
    expect((await call(app, "POST", "/v1/instances/read/heartbeat", member, beat)).status).toBe(200)
    const path = (id: string) => `/v1/instances/${id}/results?run=0&afterSeq=-1&limit=10`
    expect((await call(app, "GET", path("other"), member)).status).toBe(403)
    expect((await call(app, "GET", path("read"), await workerCredential(SECRET, "w2"))).status).toBe(403)
    expect((await call(app, "GET", path("read"), member)).status).toBe(200)
    expect((await call(app, "GET", path("other"), SECRET)).status).toBe(200)
    // The instance list is the operator's alone.
    expect((await call(app, "GET", "/v1/instances", member)).status).toBe(403)
    const listed = await call(app, "GET", "/v1/instances?state=running", SECRET)
    expect(
      ((await listed.json()) as { instances: Array<{ instanceId: string }> }).instances.map((i) => i.instanceId).sort()
    ).toEqual(["other", "read"])
    expect((await call(app, "GET", "/v1/instances?state=sleeping", SECRET)).status).toBe(400)
  })

  it("R-WIRE-4 while a secret is rotated the previous one and credentials made under it are accepted, and after it they are not", async () => {
    const previous = "the-previous-secret-0123456789"
    const job = sum({})
    const rotating = await startTracker(job, { previous: [previous] })
    const oldWorker = await workerCredential(previous, "w1")
    const beat = { instanceId: "rot", workerId: "w1", slots: 1, freeSlots: 1, queueLength: 0, idle: false }
    expect(
      (await call(rotating.app, "POST", "/v1/instances", previous, { job: job.name, instanceId: "rot" })).status
    ).toBe(200)
    expect((await call(rotating.app, "POST", "/v1/instances/rot/heartbeat", oldWorker, beat)).status).toBe(200)
    const rotated = await startTracker(job)
    expect(
      (await call(rotated.app, "POST", "/v1/instances", SECRET, { job: job.name, instanceId: "rot" })).status
    ).toBe(200)
    expect((await call(rotated.app, "GET", "/v1/instances/rot", previous)).status).toBe(401)
    expect((await call(rotated.app, "POST", "/v1/instances/rot/heartbeat", oldWorker, beat)).status).toBe(401)
  })
})
