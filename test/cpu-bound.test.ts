import { httpTrackerClient, type InstanceStatus } from "@taskfold/core/wire"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { afterEach, describe, expect, it } from "vitest"
import type { CpuParams } from "./cpu-jobs/cpu.ts"
import { processes, removeDir, tempDir } from "./support/cluster.ts"

/**
 * R-DISP-10 on real processes: `taskfold serve` and `taskfold worker` as a user starts them (no --threads,
 * so processors run on worker threads, one per core), running jobs with no config of their own whose
 * synchronous CPU work (20 s) outlasts the default ackTimeout and workerTimeout (15 s each).
 */
const jobsDir = resolve(dirname(fileURLToPath(import.meta.url)), "cpu-jobs")
const BUSY_MS = 20_000

const procs = processes()
const dirs: string[] = []
afterEach(async () => {
  await procs.killAll()
  for (const dir of dirs.splice(0)) removeDir(dir)
})

const token = randomBytes(12).toString("hex")
const clientOf = (url: string) => httpTrackerClient({ baseUrl: url, token, fetch: globalThis.fetch, timeoutMs: 10_000 })

const startTracker = async () => {
  const proc = procs.start("tracker", ["serve", "--port", "0", "--token", token, "--jobs", jobsDir])
  const [, url = ""] = await proc.waitFor(/tracker listening on (http:\/\/127\.0\.0\.1:\d+)/)
  return { proc, url }
}

/** Every execution the jobs logged: one line per start of a sub-task or of reduce. */
const executions = (logDir: string) =>
  readdirSync(logDir).flatMap((file) =>
    readFileSync(join(logDir, file), "utf8")
      .split("\n")
      .filter((line) => line.length > 0)
      .map((line) => {
        const [id = "", attempt = "", pid = "", thread = ""] = line.split(" ")
        return { id, attempt, pid, thread: Number(thread) }
      })
  )

/** Polls the status until the outcome is there, noting the slowest answer: a stalled tracker shows there. */
const untilOutcome = async (url: string, instanceId: string, timeoutMs: number) => {
  const client = clientOf(url)
  const deadline = Date.now() + timeoutMs
  let slowest = 0
  for (;;) {
    const asked = performance.now()
    const status: InstanceStatus | undefined = await Effect.runPromise(
      client.status(instanceId).pipe(Effect.orElseSucceed(() => undefined))
    )
    slowest = Math.max(slowest, performance.now() - asked)
    if (status?.outcome != null) return { status, slowest }
    if (Date.now() > deadline)
      throw new Error(
        `instance ${instanceId} has no outcome after ${timeoutMs} ms; last status ${JSON.stringify(status)}`
      )
    await new Promise((done) => setTimeout(done, 250))
  }
}

describe("CPU-bound processors on real processes, default config", () => {
  it("R-DISP-10 a sub-task that keeps its thread busy for 20 s on a taskfold worker runs once; the instance succeeds, nothing undeliverable", async () => {
    const dir = tempDir("cpu-sub")
    dirs.push(dir)
    const tracker = await startTracker()
    const worker = procs.start("w1", [
      "worker",
      "--tracker",
      tracker.url,
      "--token",
      token,
      "--jobs",
      jobsDir,
      "--id",
      "w1"
    ])
    await worker.waitFor(/listening on http/)
    const params: CpuParams = { tasks: 2, ms: BUSY_MS, logDir: dir }
    // The only override keeps the sub-tasks off the server's own worker, so the worker process runs them all.
    await Effect.runPromise(
      clientOf(tracker.url).submit({
        job: "cpu-sub",
        params: params as never,
        config: { localWorker: "exclude" },
        instanceId: "cpu-sub-1"
      })
    )
    const { status, slowest } = await untilOutcome(tracker.url, "cpu-sub-1", 120_000)

    expect(status.outcome?.ok, status.outcome?.result).toBe(true)
    expect(JSON.parse(status.outcome?.result ?? "null")).toEqual({
      seen: [
        { n: 0, attempt: 0 },
        { n: 1, attempt: 0 }
      ],
      failed: 0
    })
    // Each sub-task ran exactly once, on the worker process, on a worker thread (not the main thread, id 0).
    const runs = executions(dir)
    expect(runs).toHaveLength(2)
    expect(new Set(runs.map((run) => run.id)).size).toBe(2)
    expect(runs.every((run) => run.attempt === "0" && run.pid === String(worker.child.pid) && run.thread > 0)).toBe(
      true
    )
    expect(status.progress.byName["busy"]).toMatchObject({ total: 2, succeeded: 2, failed: 0 })
    expect(status.progress.byWorker["w1"]).toMatchObject({ succeeded: 2, failed: 0 })
    expect(tracker.proc.stderr() + worker.stderr()).not.toMatch(/undeliverable|lost|cannot reach/)
    expect(slowest).toBeLessThan(5_000)
  }, 180_000)

  it("R-DISP-10 a reduce that keeps its thread busy for 20 s on taskfold serve's own worker runs once; the tracker keeps answering", async () => {
    const dir = tempDir("cpu-reduce")
    dirs.push(dir)
    const tracker = await startTracker()
    const params: CpuParams = { tasks: 100, ms: BUSY_MS, logDir: dir }
    await Effect.runPromise(
      clientOf(tracker.url).submit({ job: "cpu-reduce", params: params as never, instanceId: "cpu-reduce-1" })
    )
    const started = Date.now()
    const { status, slowest } = await untilOutcome(tracker.url, "cpu-reduce-1", 120_000)

    expect(Date.now() - started).toBeGreaterThanOrEqual(BUSY_MS - 1_000)
    expect(status.outcome?.ok, status.outcome?.result).toBe(true)
    expect(JSON.parse(status.outcome?.result ?? "null")).toEqual({ sum: (100 * 99) / 2, count: 100 })
    // Reduce ran once, in the server's process, on a worker thread.
    const runs = executions(dir)
    expect(runs).toEqual([
      { id: "FINAL", attempt: "-", pid: String(tracker.proc.child.pid), thread: expect.any(Number) }
    ])
    expect(runs[0]?.thread).toBeGreaterThan(0)
    expect(status.progress.byName["FINAL"]).toMatchObject({ total: 1, succeeded: 1, failed: 0 })
    expect(tracker.proc.stderr()).not.toMatch(/undeliverable/)
    // The status was answered all along: the tracker's thread was never the one kept busy.
    expect(slowest).toBeLessThan(5_000)
  }, 180_000)
})
