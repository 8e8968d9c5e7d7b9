import { openSqliteStore } from "@taskfold/node"
import { httpTrackerClient, type InstanceStatus, workerCredential } from "@taskfold/core/wire"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { mkdirSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import type { SumResult } from "./jobs/sum.ts"
import { executions, jobsDir, processes, removeDir, tempDir } from "./support/cluster.ts"

/**
 * Real processes on 127.0.0.1: a tracker server (`taskfold serve`), worker processes (`taskfold worker`)
 * and, where it matters, `taskfold submit --wait`, all started through the CLI's bin file and killed
 * after each test.
 */
const procs = processes()
const dirs: string[] = []
afterEach(async () => {
  await procs.killAll()
  for (const dir of dirs.splice(0)) removeDir(dir)
})

const token = randomBytes(12).toString("hex")
const expectedSum = (n: number): SumResult => ({ count: n, distinct: n, sum: (n * (n - 1)) / 2, failed: 0 })

const startTracker = async (options: { db?: string; port?: number } = {}) => {
  const args = ["serve", "--port", String(options.port ?? 0), "--token", token, "--jobs", jobsDir]
  if (options.db !== undefined) args.push("--db", options.db)
  const proc = procs.start("tracker", args)
  const [, url = "", port = "0"] = await proc.waitFor(/tracker listening on (http:\/\/127\.0\.0\.1:(\d+))/)
  return { proc, url, port: Number(port) }
}

const startWorker = async (tracker: string, id: string, slots = 16) => {
  const proc = procs.start(id, [
    "worker",
    "--tracker",
    tracker,
    "--token",
    token,
    "--jobs",
    jobsDir,
    "--id",
    id,
    "--slots",
    String(slots)
  ])
  await proc.waitFor(/listening on http/)
  return proc
}

const clientOf = (url: string) => httpTrackerClient({ baseUrl: url, token, fetch: globalThis.fetch, timeoutMs: 10_000 })

const statusOf = (url: string, instanceId: string): Promise<InstanceStatus | undefined> =>
  Effect.runPromise(
    clientOf(url)
      .status(instanceId)
      .pipe(Effect.orElseSucceed(() => undefined))
  )

const submit = (url: string, params: unknown, instanceId: string) =>
  Effect.runPromise(clientOf(url).submit({ job: "e2e-sum", params: params as never, instanceId }))

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls the instance's status until `done` holds; returns that status. */
const until = async (
  url: string,
  instanceId: string,
  done: (status: InstanceStatus) => boolean,
  timeoutMs = 60_000,
  everyMs = 100
) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const status = await statusOf(url, instanceId)
    if (status !== undefined && done(status)) return status
    if (Date.now() > deadline)
      throw new Error(
        `instance ${instanceId}: condition not met in ${timeoutMs} ms; last status ${JSON.stringify(status)}`
      )
    await sleep(everyMs)
  }
}

const added = (status: InstanceStatus) => status.progress.byName["add"]?.succeeded ?? 0
const finished = (status: InstanceStatus) => status.outcome !== null

describe("a fleet across addresses (R-WIRE-4)", () => {
  /** A port free on `host` now. */
  const freePortOn = (host: string) =>
    new Promise<number>((done, fail) => {
      const probe = createServer()
      probe.once("error", fail)
      probe.listen(0, host, () => {
        const { port } = probe.address() as { port: number }
        probe.close(() => done(port))
      })
    })

  it("R-WIRE-4 the tracker on 127.0.0.2, workers on 127.0.0.3 and 127.0.0.4 with credentials of their own (one advertising its URL) run a job to the right result", async () => {
    const tracker = procs.start("tracker", [
      "serve",
      ...["--host", "127.0.0.2", "--port", "0", "--token", token, "--jobs", jobsDir]
    ])
    const [, url = ""] = await tracker.waitFor(/tracker listening on (http:\/\/127\.0\.0\.2:\d+)/)
    const advertisedPort = await freePortOn("127.0.0.4")
    const workers: Array<[string, string[]]> = [
      ["far-1", ["--host", "127.0.0.3"]],
      [
        "far-2",
        ["--host", "127.0.0.4", "--port", String(advertisedPort), "--advertise", `http://127.0.0.4:${advertisedPort}`]
      ]
    ]
    for (const [id, where] of workers) {
      // Each worker holds its own credential, never the secret.
      const credential = await workerCredential(token, id)
      const proc = procs.start(id, ["worker", "--tracker", url, "--token", credential, "--jobs", jobsDir, ...where])
      await proc.waitFor(/listening on http:\/\/127\.0\.0\.[34]:\d+, registered/)
    }
    const n = 2_000
    await submit(url, { n }, "fleet")
    const status = await until(url, "fleet", finished)
    expect(status.outcome).toMatchObject({ ok: true })
    expect(JSON.parse(status.outcome?.result ?? "null")).toEqual(expectedSum(n))
    // The root ran on the tracker's own worker; every sub-task on the two far workers.
    for (const [id] of workers) expect(status.progress.byWorker[id]?.succeeded ?? 0).toBeGreaterThan(0)
  }, 120_000)

  it("R-WIRE-4 R-REC-1 the secret is rotated without stopping an instance: the tracker restarts with --previous-token, workers with old credentials go on, new ones join, and after the last restart the old secret opens nothing", async () => {
    const dir = tempDir("rotate")
    dirs.push(dir)
    const db = join(dir, "tasks.db")
    const fresh = randomBytes(12).toString("hex")
    const serve = (args: string[], port = 0) =>
      procs.start("tracker", ["serve", "--port", String(port), "--jobs", jobsDir, "--db", db, ...args])
    const listening = async (proc: ReturnType<typeof serve>) => {
      const [, url = "", port = "0"] = await proc.waitFor(/tracker listening on (http:\/\/127\.0\.0\.1:(\d+))/)
      return { url, port: Number(port) }
    }
    const worker = async (url: string, id: string, secret: string) => {
      const credential = await workerCredential(secret, id)
      const proc = procs.start(id, ["worker", "--tracker", url, "--token", credential, "--jobs", jobsDir])
      await proc.waitFor(/registered/)
      return proc
    }
    const first = serve(["--token", token])
    const { url, port } = await listening(first)
    const old1 = await worker(url, "old-1", token)
    await worker(url, "old-2", token)
    const n = 6_000
    await submit(url, { n, delayMs: 20 }, "rotated")
    await until(url, "rotated", (status) => added(status) > n / 6)

    // 1. The tracker restarts on the new secret, the old one still accepted; the instance resumes.
    await first.kill("SIGTERM")
    const second = serve(["--token", fresh, "--previous-token", token], port)
    await listening(second)
    await second.waitFor(/resumed instance rotated/)
    // 2. A worker with a credential of the new secret joins; an old one is replaced.
    await worker(url, "new-1", fresh)
    await old1.kill("SIGKILL")
    const done = await until(url, "rotated", finished, 120_000)
    expect(done.outcome).toMatchObject({ ok: true })
    expect(JSON.parse(done.outcome?.result ?? "null")).toEqual(expectedSum(n))
    expect(done.progress.byWorker["new-1"]?.succeeded ?? 0).toBeGreaterThan(0)

    // 3. The last restart leaves the old secret out: it, and credentials made from it, open nothing.
    await second.kill("SIGTERM")
    await listening(serve(["--token", fresh], port))
    const asOld = await fetch(`${url}/v1/instances/rotated`, { headers: { authorization: `Bearer ${token}` } })
    expect(asOld.status).toBe(401)
    const asNew = await fetch(`${url}/v1/instances/rotated`, { headers: { authorization: `Bearer ${fresh}` } })
    expect(asNew.status).toBe(200)
  }, 180_000)
})

describe("a tracker server and worker processes on 127.0.0.1", () => {
  it("a tracker and 3 worker processes run a 100,000-sub-task mapReduce to the right result", async () => {
    const dir = tempDir("100k")
    dirs.push(dir)
    const tracker = await startTracker({ db: join(dir, "tasks.db") })
    await Promise.all(["w1", "w2", "w3"].map((id) => startWorker(tracker.url, id)))
    const n = 100_000
    const started = performance.now()
    const submitted = procs.start("submit", [
      "submit",
      "e2e-sum",
      "--tracker",
      tracker.url,
      "--token",
      token,
      "--params",
      JSON.stringify({ n }),
      "--id",
      "sum-100k",
      "--wait"
    ])
    expect(await submitted.exited).toBe(0)
    const seconds = (performance.now() - started) / 1000
    const line = JSON.parse(submitted.stdout().trim()) as { instanceId: string; ok: boolean; result: SumResult }
    expect(line).toMatchObject({ instanceId: "sum-100k", ok: true, result: expectedSum(n) })
    const status = await statusOf(tracker.url, "sum-100k")
    for (const id of ["w1", "w2", "w3"]) expect(status?.progress.byWorker[id]?.succeeded ?? 0).toBeGreaterThan(0)
    console.log(
      `100,000 sub-tasks over HTTP, tracker + 3 worker processes, SQLite store: ${seconds.toFixed(1)} s, ` +
        `${Math.round(n / seconds)} sub-tasks/s (submit to outcome)`
    )
  }, 240_000)

  it("R-WORK-2 R-REC-2 kill -9 of a worker mid-run: the instance succeeds and reduce sees each task exactly once", async () => {
    const dir = tempDir("worker-kill")
    dirs.push(dir)
    const tracker = await startTracker()
    const workers = await Promise.all(["w1", "w2", "w3"].map((id) => startWorker(tracker.url, id)))
    const n = 20_000
    await submit(tracker.url, { n, delayMs: 10, logDir: dir }, "kill-worker")
    const before = await until(
      tracker.url,
      "kill-worker",
      (status) => (status.progress.byWorker["w2"]?.succeeded ?? 0) > 500 && added(status) > n / 5
    )
    expect(finished(before)).toBe(false)
    await workers[1]?.kill("SIGKILL")
    const after = await until(tracker.url, "kill-worker", finished, 120_000)
    expect(after.outcome?.ok).toBe(true)
    expect(JSON.parse(after.outcome?.result ?? "null")).toEqual(expectedSum(n))
    // The killed worker's unfinished tasks ran again elsewhere (delivery is at-least-once),
    // yet reduce counted each once.
    const runs = new Map<string, number>()
    for (const run of executions(dir)) runs.set(run.id, (runs.get(run.id) ?? 0) + 1)
    expect(runs.size).toBe(n)
    expect([...runs.values()].some((count) => count > 1)).toBe(true)
  }, 180_000)

  it("R-REC-1 kill -9 of the tracker mid-run, restarted on the same database: the instance resumes and succeeds, no terminal task runs again", async () => {
    const dir = tempDir("tracker-kill")
    dirs.push(dir)
    const db = join(dir, "tasks.db")
    const logDir = join(dir, "runs")
    mkdirSync(logDir)
    const first = await startTracker({ db })
    await Promise.all(["w1", "w2", "w3"].map((id) => startWorker(first.url, id)))
    const n = 20_000
    const waiting = procs.start("submit", [
      "submit",
      "e2e-sum",
      "--tracker",
      first.url,
      "--token",
      token,
      "--params",
      JSON.stringify({ n, delayMs: 2, logDir }),
      "--id",
      "kill-tracker",
      "--wait"
    ])
    await until(first.url, "kill-tracker", (status) => added(status) > n / 4)
    await first.proc.kill("SIGKILL")
    const killedAt = Date.now()

    // What the dead tracker had stored as terminal: none of it may run again.
    const store = openSqliteStore(db)
    const terminal = new Set<string>()
    try {
      for (let afterSeq = -1; ; ) {
        const page = await Effect.runPromise(store.readResults("kill-tracker", 0, afterSeq, 5_000))
        for (const row of page) terminal.add(row.id)
        if (page.length < 5_000) break
        afterSeq = (page[page.length - 1] as { seq: number }).seq
      }
    } finally {
      store.close()
    }
    expect(terminal.size).toBeGreaterThan(n / 4)
    expect(terminal.size).toBeLessThan(n)

    const second = await startTracker({ db, port: first.port })
    await second.proc.waitFor(/resumed instance kill-tracker/)
    expect(await waiting.exited).toBe(0)
    const line = JSON.parse(waiting.stdout().trim()) as { ok: boolean; result: SumResult }
    expect(line).toMatchObject({ ok: true, result: expectedSum(n) })

    const runs = executions(logDir)
    const again = runs.filter((run) => run.at > killedAt && terminal.has(run.id))
    expect(again).toEqual([])
    expect(new Set(runs.map((run) => run.id)).size).toBe(n)
    expect(runs.some((run) => run.at > killedAt)).toBe(true)
  }, 180_000)

  it("R-WORK-5 a worker that joins mid-run gets work at once", async () => {
    const tracker = await startTracker()
    await startWorker(tracker.url, "first", 4)
    const n = 3_000
    await submit(tracker.url, { n, delayMs: 10 }, "join-late")
    await until(tracker.url, "join-late", (status) => added(status) > 100)
    const joiner = procs.start("late", [
      "worker",
      "--tracker",
      tracker.url,
      "--token",
      token,
      "--jobs",
      jobsDir,
      "--id",
      "late",
      "--slots",
      "16"
    ])
    await joiner.waitFor(/listening on http/)
    const joinedAt = Date.now()
    const busy = await until(
      tracker.url,
      "join-late",
      (status) => (status.progress.byWorker["late"]?.succeeded ?? 0) > 0,
      10_000,
      20
    )
    const firstWorkAfter = Date.now() - joinedAt
    expect(finished(busy)).toBe(false)
    expect(firstWorkAfter).toBeLessThan(2_000)
    const done = await until(tracker.url, "join-late", finished, 60_000)
    expect(JSON.parse(done.outcome?.result ?? "null")).toEqual(expectedSum(n))
    expect(done.progress.byWorker["late"]?.succeeded ?? 0).toBeGreaterThan(n / 4)
    console.log(`a worker joining mid-run finished its first task ${firstWorkAfter} ms after registering`)
  }, 120_000)

  it("R-REC-1 `taskfold run --db` killed mid-run and run again resumes the instance: no terminal task runs again", async () => {
    const dir = tempDir("run-resume")
    dirs.push(dir)
    const db = join(dir, "tasks.db")
    const logDir = join(dir, "runs")
    mkdirSync(logDir)
    const n = 4_000
    const args = ["run", join(jobsDir, "sum.ts"), "--db", db, "--workers", "2", "--slots", "8"]
    const first = procs.start("run", [...args, "--params", JSON.stringify({ n, delayMs: 10, logDir })])
    await first.waitFor(/add (\d{4,})\/4000/, 30_000)
    await first.kill("SIGKILL")
    const killedAt = Date.now()
    const store = openSqliteStore(db)
    const [instanceId = ""] = await Effect.runPromise(store.listInstances())
    const terminal = new Set(
      (await Effect.runPromise(store.readResults(instanceId, 0, -1, 10_000))).map((row) => row.id)
    )
    store.close()
    expect(terminal.size).toBeLessThan(n)

    const second = procs.start("run again", args)
    expect(await second.exited).toBe(0)
    expect(second.stderr()).toContain(`resuming instance ${instanceId}`)
    expect(JSON.parse(second.stdout().trim())).toMatchObject({ instanceId, ok: true, result: expectedSum(n) })
    expect(executions(logDir).filter((run) => run.at > killedAt && terminal.has(run.id))).toEqual([])
  }, 120_000)
})
