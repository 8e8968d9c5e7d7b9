import { defineJob, type Job } from "@taskfold/core"
import type { StopMessage, TaskBatch, WorkerHandle } from "@taskfold/core/adapter"
import { makeTrackerApp, makeWorkerApp } from "@taskfold/core/wire"
import { makeTrackerServer, openSqliteStore, openSqliteOutcomeLog, type TrackerServer } from "@taskfold/node"
import { Effect, Exit, Scope } from "effect"
import fc from "fast-check"
import type { Hono } from "hono"
import { createHmac, randomBytes } from "node:crypto"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { afterEach, describe, expect, it } from "vitest"
import { jobsDir, processes, removeDir, tempDir } from "./support/cluster.ts"

const token = randomBytes(12).toString("hex")
const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" }
const MAX_BODY = 64 * 1024
/** The key a registering worker gives the tracker to call it with. */
const KEY = "k".repeat(32)

/**
 * Opened by a test when the held instance may go on:
 * until then its root waits and nothing can move but what a request does.
 */
let openGate = () => {}
let gate: Promise<void> = Promise.resolve()

const held: Job = defineJob({
  name: "trust-hold",
  kind: "mapReduce",
  config: { heartbeatInterval: 100, workerTimeout: 60_000, ackTimeout: 60_000, localWorker: "exclude" },
  process: async (task, ctx) => {
    if (task.isRoot) {
      await gate
      return ctx.map([1, 2, 3, 4, 5], "part")
    }
    return task.body
  },
  reduce: async (results) => {
    let total = 0
    for await (const result of results) if (result.name === "part" && result.ok) total += result.result as number
    return total
  }
})

/** Every row of every table of the database, in a stable order: what "nothing stored changed" compares. */
const dump = (db: string): string => {
  const reader = new DatabaseSync(db, { readOnly: true })
  try {
    const tables = reader.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{
      name: string
    }>
    return JSON.stringify(
      tables.map(({ name }) => [name, reader.prepare(`SELECT * FROM "${name}" ORDER BY 1, 2`).all()]),
      (_key, value: unknown) => (value instanceof Uint8Array ? Buffer.from(value).toString("base64") : value)
    )
  } finally {
    reader.close()
  }
}

interface Setup {
  readonly app: Hono
  readonly server: TrackerServer
  readonly db: string
  /** Batches the tracker sent to the registered fake worker. */
  readonly batches: TaskBatch[]
  readonly stops: StopMessage[]
  /** The Authorization header of every call the tracker made to a worker. */
  readonly sentAuth: string[]
}

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  openGate()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/**
 * The tracker server's host on a SQLite store, behind makeTrackerApp,
 * with the instance "held" live and its root waiting.
 */
const setup = async (): Promise<Setup> => {
  gate = new Promise((resolve) => (openGate = resolve))
  const dir = tempDir("trust")
  cleanups.push(() => removeDir(dir))
  const db = join(dir, "tasks.db")
  const store = openSqliteStore(db)
  const outcomes = openSqliteOutcomeLog(db)
  cleanups.push(() => {
    store.close()
    outcomes.close()
  })
  const batches: TaskBatch[] = []
  const stops: StopMessage[] = []
  const fakeWorker: WorkerHandle = {
    id: "fake",
    join: () => Effect.void,
    deliver: (batch) => void batches.push(batch),
    stop: (message) => void stops.push(message),
    stats: () => ({ running: 0, queued: 0, completed: 0 })
  }
  // The tracker calls the worker with the key the worker registered, never with its secret (R-WIRE-4).
  const workerApp = makeWorkerApp(fakeWorker, { token: KEY })
  const sentAuth: string[] = []
  const scope = Effect.runSync(Scope.make())
  cleanups.push(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  const server = await Effect.runPromise(
    makeTrackerServer({
      token,
      jobs: new Map([[held.name, held]]),
      store,
      outcomes,
      fetch: (url, init) => {
        sentAuth.push(new Headers(init.headers).get("authorization") ?? "")
        return Promise.resolve(workerApp.request(url, init))
      }
    }).pipe(Scope.provide(scope))
  )
  const app = makeTrackerApp(server.host, { token, maxBodyBytes: MAX_BODY })
  const submitted = await request(app, "POST", "/v1/instances", JSON.stringify({ job: held.name, instanceId: "held" }))
  expect(submitted.status).toBe(200)
  // Held live: the root runs on the server's own worker and waits for the gate.
  for (;;) {
    const tracker = server.tracker("held")
    const progress = tracker === undefined ? undefined : await Effect.runPromise(tracker.progress)
    if ((progress?.byName["ROOT"]?.running ?? 0) > 0) break
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return { app, server, db, batches, stops, sentAuth }
}

/** A worker's credential (R-WIRE-4), made with node:crypto as the format says: tfw1.<id>.<HMAC-SHA256>. */
const credentialOf = (workerId: string): string =>
  `tfw1.${Buffer.from(workerId).toString("base64url")}.${createHmac("sha256", token)
    .update(`worker:${workerId}`)
    .digest("base64url")}`

/** A message naming a worker goes with that worker's credential, as its process sends it; the rest as the operator. */
const headersOf = (body: string | undefined): Record<string, string> => {
  let workerId: unknown
  try {
    workerId = body === undefined ? undefined : (JSON.parse(body) as { workerId?: unknown }).workerId
  } catch {}
  return typeof workerId === "string" && workerId.length > 0
    ? { ...auth, authorization: `Bearer ${credentialOf(workerId)}` }
    : auth
}

const request = (
  app: Hono,
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = headersOf(body)
) =>
  Promise.resolve(
    app.request(`http://tracker${path}`, body === undefined ? { method, headers } : { method, headers, body })
  )

const bodyOf = async (response: Response) =>
  (await response.json()) as { error?: { reason: string; path?: string; message: string } } & Record<string, unknown>

const heartbeat = { instanceId: "held", workerId: "w9", slots: 4, freeSlots: 4, queueLength: 0, idle: false }
/** One well-formed message per endpoint: what an attacker without the token would send. */
const endpoints: ReadonlyArray<{ method: "GET" | "POST"; path: string; body?: unknown }> = [
  { method: "POST", path: "/v1/instances", body: { job: "trust-hold", instanceId: "other" } },
  { method: "GET", path: "/v1/instances/held" },
  {
    method: "POST",
    path: "/v1/instances/held/reports",
    body: { instanceId: "held", workerId: "local", reports: [{ taskId: "0", attempt: 0, status: 6, result: "1" }] }
  },
  {
    method: "POST",
    path: "/v1/instances/held/map",
    body: { instanceId: "held", workerId: "local", taskId: "0", attempt: 0, name: "part", bodies: ["1"] }
  },
  { method: "POST", path: "/v1/instances/held/heartbeat", body: heartbeat },
  { method: "POST", path: "/v1/instances/held/pull", body: { instanceId: "held", workerId: "w9", pageSize: 10 } },
  {
    method: "POST",
    path: "/v1/instances/held/context",
    body: { instanceId: "held", workerId: "local", taskId: "0", attempt: 0, entries: { a: 1 } }
  },
  { method: "POST", path: "/v1/instances/held/kill", body: { taskId: null, reason: "intruder" } },
  { method: "GET", path: "/v1/instances/held/results?run=0&afterSeq=-1&limit=10" },
  {
    method: "POST",
    path: "/v1/workers",
    body: { workerId: "w9", url: "http://127.0.0.1:9", key: KEY, slots: 4, jobs: ["trust-hold"] }
  }
]

describe("trust: what reaches the tracker from outside", () => {
  it("R-WIRE-2 every endpoint answers 401 without the token or with a wrong one, and nothing stored changes", async () => {
    const { app, db, server } = await setup()
    const before = dump(db)
    const wrong = [
      {},
      { authorization: `Bearer ${token}x` },
      { authorization: `bearer ${token}` },
      { authorization: token },
      { authorization: "Bearer " }
    ]
    for (const endpoint of endpoints) {
      for (const headers of wrong) {
        const response = await request(
          app,
          endpoint.method,
          endpoint.path,
          endpoint.body === undefined ? undefined : JSON.stringify(endpoint.body),
          {
            "content-type": "application/json",
            ...headers
          }
        )
        expect(response.status, `${endpoint.method} ${endpoint.path} with ${JSON.stringify(headers)}`).toBe(401)
        expect((await bodyOf(response)).error?.reason).toBe("unauthorized")
      }
    }
    expect(dump(db)).toBe(before)
    expect(server.instances()).toEqual(["held"])
  })

  it("R-WIRE-2 an oversized body answers 413 on every endpoint that takes one, and nothing stored changes", async () => {
    const { app, db, server } = await setup()
    const before = dump(db)
    for (const endpoint of endpoints.filter((e) => e.method === "POST")) {
      const padded = JSON.stringify({ ...(endpoint.body as object), padding: "x".repeat(MAX_BODY) })
      const response = await request(app, "POST", endpoint.path, padded)
      expect(response.status, endpoint.path).toBe(413)
    }
    // A huge submit is refused before it is read: no instance is started.
    const huge = await request(
      app,
      "POST",
      "/v1/instances",
      JSON.stringify({ job: "trust-hold", params: "y".repeat(2 * MAX_BODY) })
    )
    expect(huge.status).toBe(413)
    expect(dump(db)).toBe(before)
    expect(server.instances()).toEqual(["held"])
  })

  it("R-WIRE-1 malformed messages answer 400 naming the bad field, and nothing stored changes", async () => {
    const { app, db, server } = await setup()
    const before = dump(db)
    const cases: Array<{
      path: string
      body: string
      method?: string
      field?: string
      reason?: string
      status?: number
    }> = [
      { path: "/v1/instances", body: "{not json", reason: "bad-json" },
      { path: "/v1/instances", body: JSON.stringify({ job: 5 }), field: '["job"]' },
      {
        path: "/v1/instances",
        body: JSON.stringify({ job: "trust-hold", config: { taskRetries: -1 } }),
        field: '["config"]["taskRetries"]'
      },
      { path: "/v1/instances", body: JSON.stringify({ job: "trust-hold", surprise: true }), field: '["surprise"]' },
      { path: "/v1/instances", body: JSON.stringify({ job: "no-such-job" }), reason: "bad-input" },
      {
        path: "/v1/instances/held/reports",
        body: JSON.stringify({
          instanceId: "held",
          workerId: "local",
          reports: [{ taskId: "0", attempt: 0, status: 9 }]
        }),
        field: '["reports"][0]["status"]'
      },
      {
        path: "/v1/instances/held/reports",
        body: JSON.stringify({
          instanceId: "held",
          workerId: "local",
          reports: [{ taskId: "0", attempt: -1, status: 6 }]
        }),
        field: '["reports"][0]["attempt"]'
      },
      {
        path: "/v1/instances/held/map",
        body: JSON.stringify({
          instanceId: "held",
          workerId: "local",
          taskId: "0",
          attempt: 0,
          name: "part",
          bodies: "1"
        }),
        field: '["bodies"]'
      },
      {
        path: "/v1/instances/held/map",
        body: JSON.stringify({
          instanceId: "held",
          workerId: "local",
          taskId: "0",
          attempt: 0,
          name: "part",
          bodies: [{ $bytes: "!!" }]
        })
      },
      {
        path: "/v1/instances/held/heartbeat",
        body: JSON.stringify({ ...heartbeat, instanceId: "elsewhere" }),
        field: '["instanceId"]'
      },
      {
        path: "/v1/instances/held/heartbeat",
        body: JSON.stringify({ ...heartbeat, freeSlots: "4" }),
        field: '["freeSlots"]'
      },
      { path: "/v1/instances/held/kill", body: JSON.stringify({ taskId: null }), field: '["reason"]' },
      {
        path: "/v1/workers",
        body: JSON.stringify({ workerId: "w9", url: "ftp://127.0.0.1:9", key: KEY, slots: 4, jobs: [] }),
        reason: "bad-input"
      },
      {
        path: "/v1/workers",
        body: JSON.stringify({ workerId: "local", url: "http://127.0.0.1:9", key: KEY, slots: 4, jobs: [] }),
        // No credential acts as the tracker's own worker (R-WIRE-4).
        status: 403,
        reason: "forbidden"
      },
      {
        path: "/v1/workers",
        body: JSON.stringify({ workerId: "w9", url: "http://127.0.0.1:9", key: KEY, slots: 0, jobs: [] }),
        field: '["slots"]'
      },
      { method: "GET", path: "/v1/instances/held/results?run=0&afterSeq=-1&limit=0", body: "", field: '["limit"]' },
      { method: "GET", path: "/v1/instances/held/results?run=x", body: "", field: '["run"]' }
    ]
    for (const c of cases) {
      const response = await request(app, c.method ?? "POST", c.path, c.method === "GET" ? undefined : c.body)
      expect(response.status, `${c.path} ${c.body}`).toBe(c.status ?? 400)
      const error = (await bodyOf(response)).error
      if (c.field !== undefined) expect(error?.path, c.body).toBe(c.field)
      if (c.reason !== undefined) expect(error?.reason, c.body).toBe(c.reason)
    }
    expect(dump(db)).toBe(before)
    expect(server.instances()).toEqual(["held"])
  })

  it("R-STATE-3 replayed messages are dropped: a repeated report, a stale status, a repeated submit and registration change nothing", async () => {
    const { app, db, server, batches } = await setup()
    const registration = JSON.stringify({
      workerId: "fake",
      url: "http://fake.worker:1",
      key: KEY,
      slots: 8,
      jobs: ["trust-hold"]
    })
    const registered = await request(app, "POST", "/v1/workers", registration)
    expect(registered.status).toBe(200)
    expect((await bodyOf(registered))["instances"]).toEqual(["held"])
    // As a worker process does with the answer: it joins the instance with its own heartbeat (R-WORK-5).
    const join = JSON.stringify({ ...heartbeat, workerId: "fake", slots: 8, freeSlots: 8 })
    expect((await request(app, "POST", "/v1/instances/held/heartbeat", join)).status).toBe(200)
    openGate()
    // The root maps 5 parts; with a remote worker alive they all go to it (localWorker: "exclude").
    while (batches.flatMap((batch) => batch.tasks).length < 5) await new Promise((resolve) => setTimeout(resolve, 5))
    const parts = batches.flatMap((batch) => batch.tasks)
    const [first, ...rest] = parts
    if (first === undefined) throw new Error("no task reached the fake worker")

    const report = JSON.stringify({
      instanceId: "held",
      workerId: "fake",
      reports: [{ taskId: first.id, attempt: first.attempt, status: 6, result: first.body as string }]
    })
    const applied = await request(app, "POST", "/v1/instances/held/reports", report)
    expect(await bodyOf(applied)).toMatchObject({ applied: 1, dropped: 0 })
    const afterFirst = dump(db)

    const replayed = await request(app, "POST", "/v1/instances/held/reports", report)
    expect(replayed.status).toBe(200)
    expect(await bodyOf(replayed)).toMatchObject({ applied: 0, dropped: 1 })
    const stale = await request(
      app,
      "POST",
      "/v1/instances/held/reports",
      JSON.stringify({
        instanceId: "held",
        workerId: "fake",
        reports: [{ taskId: first.id, attempt: first.attempt, status: 4 }]
      })
    )
    expect(await bodyOf(stale)).toMatchObject({ applied: 0, dropped: 1 })
    const resubmitted = await request(
      app,
      "POST",
      "/v1/instances",
      JSON.stringify({ job: held.name, instanceId: "held" })
    )
    expect(await bodyOf(resubmitted)).toEqual({ instanceId: "held" })
    expect((await request(app, "POST", "/v1/workers", registration)).status).toBe(200)
    expect(dump(db)).toBe(afterFirst)
    expect(server.instances()).toEqual(["held"])

    // The rest finish; the outcome counts the first part once.
    const others = JSON.stringify({
      instanceId: "held",
      workerId: "fake",
      reports: rest.map((task) => ({ taskId: task.id, attempt: task.attempt, status: 6, result: task.body as string }))
    })
    expect((await request(app, "POST", "/v1/instances/held/reports", others)).status).toBe(200)
    const tracker = server.tracker("held")
    const outcome = await Effect.runPromise(tracker === undefined ? server.core.outcome("held") : tracker.outcome)
    expect(outcome).toMatchObject({ ok: true, result: "15" })
    while (server.instances().length > 0) await new Promise((resolve) => setTimeout(resolve, 5))
    const finished = dump(db)
    // A report replayed after the end finds no instance; status still answers with the outcome.
    expect((await request(app, "POST", "/v1/instances/held/reports", report)).status).toBe(404)
    const status = await request(app, "GET", "/v1/instances/held")
    expect(await bodyOf(status)).toMatchObject({ outcome: { ok: true, result: "15" } })
    expect(dump(db)).toBe(finished)
  })

  it("R-WIRE-3 random bodies posted to every endpoint of the tracker and the worker never get a 5xx and change nothing stored", async () => {
    const { app, db, server } = await setup()
    const delivered: TaskBatch[] = []
    const workerApp = makeWorkerApp(
      {
        id: "w",
        join: () => Effect.void,
        deliver: (batch) => void delivered.push(batch),
        stop: () => {},
        stats: () => ({ running: 0, queued: 0, completed: 0 })
      },
      { token }
    )
    const before = dump(db)
    const trackerPaths = [
      "/v1/instances",
      "/v1/workers",
      "/v1/instances/nope/reports",
      ...["reports", "map", "heartbeat", "pull", "context", "kill", "results"].map(
        (call) => `/v1/instances/held/${call}`
      )
    ]
    const text = fc.oneof(fc.string(), fc.string({ unit: "binary" }))
    const body = fc.oneof(
      text,
      fc.json(),
      fc.constantFrom("", "null", "[]", "{}", '{"$bytes":"!!"}', '{"instanceId":"held"}'),
      fc
        .record(
          {
            instanceId: fc.oneof(fc.constant("held"), text),
            workerId: text,
            taskId: fc.oneof(fc.constantFrom("0", "0.1", "0.F"), text),
            attempt: fc.oneof(fc.integer(), fc.double()),
            status: fc.integer({ min: -2, max: 9 }),
            reports: fc.array(
              fc.record({ taskId: text, attempt: fc.integer(), status: fc.integer({ min: -2, max: 9 }) })
            ),
            bodies: fc.array(fc.oneof(text, fc.constant({ $bytes: "!!" }))),
            url: text,
            slots: fc.integer(),
            job: fc.oneof(fc.constant("no-such-job"), text),
            tasks: fc.array(fc.record({ id: text, name: text, kind: fc.integer(), body: text, attempt: fc.integer() }))
          },
          { requiredKeys: [] }
        )
        .map((value) => JSON.stringify(value))
    )
    const printable = fc.string().filter((s) => /^[\x20-\x7e]*$/.test(s))
    const headers = fc.oneof(
      fc.constant(auth),
      // As a worker (its credential), and as the tracker calling a worker (the key that worker registered).
      fc.constant(headersOf(JSON.stringify({ workerId: "w9" }))),
      fc.constant({ ...auth, authorization: `Bearer ${KEY}` }),
      fc.constant({ "content-type": "application/json" }),
      fc.record({ authorization: printable })
    )
    const query = fc
      .record({ run: text, afterSeq: text, limit: text }, { requiredKeys: [] })
      .map((q) => `?${new URLSearchParams(q).toString()}`)

    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...trackerPaths, "/v1/batches", "/v1/stop"),
        fc.constantFrom("GET", "POST", "PUT"),
        body,
        headers,
        query,
        async (path, method, text, headers, search) => {
          const target = path === "/v1/batches" || path === "/v1/stop" ? workerApp : app
          const response = await request(
            target,
            method,
            method === "GET" ? `${path}${search}` : path,
            method === "GET" ? undefined : text,
            headers
          )
          expect(response.status).toBeLessThan(500)
          await response.arrayBuffer()
        }
      ),
      { numRuns: 600 }
    )
    expect(delivered).toEqual([])
    expect(dump(db)).toBe(before)
    expect(server.instances()).toEqual(["held"])
    openGate()
    const tracker = server.tracker("held")
    expect(tracker).toBeDefined()
    expect(await Effect.runPromise(tracker!.outcome)).toMatchObject({ ok: true, result: "15" })
  })
})

describe("trust: roles (R-WIRE-4)", () => {
  const post = (app: Hono, path: string, body: unknown, as: string | undefined) =>
    request(
      app,
      "POST",
      path,
      JSON.stringify(body),
      as === undefined ? auth : { ...auth, authorization: `Bearer ${as}` }
    )
  const registration = (workerId: string, url = "http://fake.worker:1") => ({
    workerId,
    url,
    key: KEY,
    slots: 8,
    jobs: ["trust-hold"]
  })
  const joined = async (app: Hono, workerId: string) => {
    expect((await post(app, "/v1/workers", registration(workerId), credentialOf(workerId))).status).toBe(200)
    const join = { ...heartbeat, workerId, slots: 8, freeSlots: 8 }
    expect((await post(app, "/v1/instances/held/heartbeat", join, credentialOf(workerId))).status).toBe(200)
  }

  it("R-WIRE-4 a worker credential acts as its own worker only: not as another, not as the tracker's own, not as the operator; nothing changes", async () => {
    const { app, db, server } = await setup()
    await joined(app, "fake")
    const before = dump(db)
    const mallory = credentialOf("mallory")
    const refusals: Array<[string, unknown]> = [
      // taking over another worker's id, at an address of its own
      ["/v1/workers", registration("fake", "http://evil.example:1")],
      // speaking as another worker
      ["/v1/instances/held/heartbeat", { ...heartbeat, workerId: "fake" }],
      ["/v1/instances/held/reports", { instanceId: "held", workerId: "fake", reports: [] }],
      ["/v1/instances/held/pull", { instanceId: "held", workerId: "fake", pageSize: 4 }],
      // the tracker's own worker: one forged idle heartbeat used to fail the instance
      ["/v1/instances/held/heartbeat", { ...heartbeat, workerId: "local", idle: true }],
      ["/v1/instances/held/reports", { instanceId: "held", workerId: "local", reports: [] }],
      // the operator's calls
      ["/v1/instances", { job: "trust-hold", instanceId: "mine" }],
      ["/v1/instances/held/kill", { taskId: null, reason: "mallory" }]
    ]
    for (const [path, body] of refusals) {
      const response = await post(app, path, body, mallory)
      expect({ path, body, status: response.status }).toEqual({ path, body, status: 403 })
      expect((await bodyOf(response)).error?.reason).toBe("forbidden")
    }
    const asLocal = await post(
      app,
      "/v1/instances/held/heartbeat",
      { ...heartbeat, workerId: "local", idle: true },
      credentialOf("local")
    )
    expect(asLocal.status).toBe(403)
    expect(
      (await request(app, "GET", "/v1/instances/held", undefined, { authorization: `Bearer ${mallory}` })).status
    ).toBe(403)
    // the operator does not act as a worker either
    expect((await post(app, "/v1/instances/held/heartbeat", { ...heartbeat, workerId: "fake" }, token)).status).toBe(
      403
    )
    // a credential whose mac does not match its id is no credential
    const [prefix, , mac] = mallory.split(".")
    const forged = `${prefix}.${Buffer.from("fake").toString("base64url")}.${mac}`
    expect((await post(app, "/v1/instances/held/heartbeat", { ...heartbeat, workerId: "fake" }, forged)).status).toBe(
      401
    )
    expect(dump(db)).toBe(before)
    expect(server.instances()).toEqual(["held"])
  })

  it("R-WIRE-4 the tracker calls a registered URL with the key that worker chose, never with its secret", async () => {
    const { app, sentAuth, batches } = await setup()
    await joined(app, "fake")
    openGate()
    while (batches.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
    expect(sentAuth.length).toBeGreaterThan(0)
    expect(new Set(sentAuth)).toEqual(new Set([`Bearer ${KEY}`]))
    expect(sentAuth.some((header) => header.includes(token))).toBe(false)
  })

  it("R-WIRE-4 R-STATE-1 random messages under one worker's credential never change another worker's tasks or another instance", async () => {
    const { app, db, server, batches } = await setup()
    await joined(app, "fake")
    openGate()
    while (batches.flatMap((batch) => batch.tasks).length < 5) await new Promise((resolve) => setTimeout(resolve, 5))
    const tasks = batches.flatMap((batch) => batch.tasks)
    const rowsOf = () => {
      const reader = new DatabaseSync(db, { readOnly: true })
      try {
        return JSON.stringify(
          reader.prepare("SELECT id, status, attempt, worker, result FROM taskfold_tasks ORDER BY seq").all()
        )
      } finally {
        reader.close()
      }
    }
    const before = rowsOf()
    const mallory = credentialOf("mallory")
    const taskId = fc.constantFrom("0", ...tasks.map((task) => task.id), "0.99")
    const workerId = fc.constantFrom("fake", "local", "mallory", "w9")
    const instanceId = fc.constantFrom("held", "other")
    const message = fc.oneof(
      fc.record({
        path: fc.constant("reports"),
        body: fc.record({
          instanceId,
          workerId,
          reports: fc.array(
            fc.record({
              taskId,
              attempt: fc.nat(3),
              status: fc.constantFrom(3, 4, 5, 6),
              result: fc.constant("999")
            }),
            { maxLength: 4 }
          )
        })
      }),
      fc.record({
        path: fc.constant("heartbeat"),
        body: fc.record({
          instanceId,
          workerId,
          slots: fc.nat(8),
          freeSlots: fc.nat(8),
          queueLength: fc.nat(3),
          idle: fc.boolean()
        })
      }),
      fc.record({
        path: fc.constant("map"),
        body: fc.record({
          instanceId,
          workerId,
          taskId,
          attempt: fc.nat(3),
          name: fc.constant("part"),
          bodies: fc.constant(["7"])
        })
      }),
      fc.record({
        path: fc.constant("pull"),
        body: fc.record({ instanceId, workerId, pageSize: fc.integer({ min: 1, max: 8 }) })
      })
    )
    await fc.assert(
      fc.asyncProperty(message, async ({ path, body }) => {
        const response = await post(app, `/v1/instances/${body.instanceId}/${path}`, body, mallory)
        expect(response.status).toBeLessThan(500)
        await response.arrayBuffer()
        expect(rowsOf()).toBe(before)
      }),
      { numRuns: 300 }
    )
    expect(server.instances()).toEqual(["held"])
  })
})

describe("trust: a tracker server process", () => {
  const procs = processes()
  afterEach(() => procs.killAll())

  it("R-WIRE-3 random bodies to every endpoint of a running `taskfold serve` never get a 5xx, and it keeps working", async () => {
    const dir = tempDir("trust-process")
    cleanups.push(() => removeDir(dir))
    const tracker = procs.start("tracker", [
      "serve",
      "--port",
      "0",
      "--token",
      token,
      "--jobs",
      jobsDir,
      "--db",
      join(dir, "tasks.db"),
      "--max-body",
      String(MAX_BODY)
    ])
    const [, url = ""] = await tracker.waitFor(/tracker listening on (http:\/\/127\.0\.0\.1:\d+)/)
    const call = (method: string, path: string, body: string | undefined, headers: Record<string, string>) =>
      fetch(`${url}${path}`, body === undefined || method === "GET" ? { method, headers } : { method, headers, body })

    const live = await call(
      "POST",
      "/v1/instances",
      JSON.stringify({ job: "e2e-sum", instanceId: "fuzzed", params: { n: 50 } }),
      auth
    )
    expect(live.status).toBe(200)
    const paths = [
      "/v1/instances",
      "/v1/workers",
      "/v1/instances/fuzzed",
      ...["reports", "map", "heartbeat", "pull", "context", "kill", "results"].map((c) => `/v1/instances/fuzzed/${c}`),
      "/v1/instances/nope/reports",
      "/",
      "/v1/instances/%ZZ/map"
    ]
    const body = fc.oneof(
      fc.string(),
      fc.json(),
      fc.string({ unit: "binary", maxLength: 200 }),
      fc.constant("x".repeat(MAX_BODY + 1))
    )
    const headers = fc.oneof(
      fc.constant(auth),
      fc.constant({}),
      fc.record({ authorization: fc.string().filter((s) => /^[\x20-\x7e]*$/.test(s)) })
    )
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paths),
        fc.constantFrom("GET", "POST", "DELETE"),
        body,
        headers,
        async (path, method, text, headers) => {
          const response = await call(method, path, text, headers)
          expect(response.status).toBeLessThan(500)
          await response.arrayBuffer()
        }
      ),
      { numRuns: 300 }
    )
    expect(tracker.child.exitCode).toBeNull()
    // Still a working tracker: with a worker, a new instance runs to its result.
    const worker = procs.start("worker", [
      "worker",
      "--tracker",
      url,
      "--token",
      token,
      "--jobs",
      jobsDir,
      "--id",
      "after-fuzz"
    ])
    await worker.waitFor(/listening on http/)
    const submitted = procs.start("submit", [
      "submit",
      "e2e-sum",
      "--tracker",
      url,
      "--token",
      token,
      "--params",
      '{"n":500}',
      "--wait"
    ])
    expect(await submitted.exited).toBe(0)
    expect(JSON.parse(submitted.stdout().trim())).toMatchObject({
      ok: true,
      result: { count: 500, distinct: 500, sum: (500 * 499) / 2, failed: 0 }
    })
  }, 120_000)
})
