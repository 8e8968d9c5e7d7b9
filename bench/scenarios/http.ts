/**
 * Scenario 4, one run in a fresh process: `node bench/scenarios/http.ts --n N [--store sqlite|memory] [--workers W]`.
 * Starts a tracker server (`taskfold serve` on 127.0.0.1, a free port; with `--store sqlite`, the
 * default, on a new SQLite file in a temporary folder) and W worker processes (`taskfold worker`, 16
 * slots each; default 2), all on the job module bench/jobs/noop.ts, waits until they listen, then
 * submits an N-sub-task no-op mapReduce through the HTTP client and polls its status every 10 ms until
 * the outcome. The clock runs from the submit request to the first status carrying the outcome.
 * Peak RSS is VmHWM of the tracker and of each worker process, read before they are killed.
 * Every process it starts is killed (SIGKILL) on the way out, whether the run succeeded or not.
 */
import { httpTrackerClient, type InstanceStatus } from "@taskfold/core/wire"
import { Effect } from "effect"
import { spawn, type ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { argNumber, argValue, emit, peakRssBytes } from "../lib/common.ts"

const argv = process.argv.slice(2)
const n = argNumber(argv, "n", 100_000)
const workerCount = Math.max(1, argNumber(argv, "workers", 2))
const storeKind = argValue(argv, "store", "sqlite")
if (storeKind !== "sqlite" && storeKind !== "memory") throw new Error("--store must be sqlite or memory")
const timeoutMs = argNumber(argv, "timeout", 240) * 1000

const cli = fileURLToPath(new URL("../../packages/cli/bin/taskfold.mjs", import.meta.url))
const jobs = fileURLToPath(new URL("../jobs/noop.ts", import.meta.url))
const token = randomBytes(12).toString("hex")
const folder = mkdtempSync(join(tmpdir(), "taskfold-bench-http-"))

interface Proc {
  readonly name: string
  readonly child: ChildProcess
  /** Resolves with the first match of `pattern` on stderr or stdout. */
  readonly waitFor: (pattern: RegExp, ms?: number) => Promise<RegExpMatchArray>
}

const started: Proc[] = []
const killAll = (): void => {
  for (const { child } of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
}
process.once("exit", killAll)
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    killAll()
    process.exit(1)
  })
}

const start = (name: string, args: ReadonlyArray<string>): Proc => {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] })
  let text = ""
  const waiters = new Set<() => void>()
  const wake = () => {
    for (const waiter of [...waiters]) waiter()
  }
  // Only the head of the output matters (the "listening" lines); later output is read and dropped.
  const keep = (chunk: string) => {
    if (text.length < 64_000) text += chunk
    wake()
  }
  child.stdout?.setEncoding("utf8").on("data", keep)
  child.stderr?.setEncoding("utf8").on("data", keep)
  child.once("exit", wake)
  const waitFor = (pattern: RegExp, ms = 30_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer)
        waiters.delete(check)
      }
      const check = () => {
        const found = pattern.exec(text)
        if (found !== null) {
          finish()
          resolve(found)
        } else if (child.exitCode !== null || child.signalCode !== null) {
          finish()
          reject(
            new Error(
              `${name} exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}: ${text.slice(-2000)}`
            )
          )
        }
      }
      const timer = setTimeout(() => {
        finish()
        reject(new Error(`${name} did not print ${pattern} within ${ms} ms: ${text.slice(-2000)}`))
      }, ms)
      waiters.add(check)
      check()
    })
  const proc = { name, child, waitFor }
  started.push(proc)
  return proc
}

/** Peak resident set size of a live process (VmHWM), in bytes; null if it cannot be read. */
const peakRssOf = (pid: number | undefined): number | null => {
  if (pid === undefined) return null
  try {
    const found = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return found === null ? null : Number(found[1]) * 1024
  } catch {
    return null
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

try {
  const serveArgs = ["serve", "--port", "0", "--token", token, "--jobs", jobs]
  if (storeKind === "sqlite") serveArgs.push("--db", join(folder, "tasks.db"))
  const tracker = start("tracker", serveArgs)
  const [, url = ""] = await tracker.waitFor(/tracker listening on (http:\/\/127\.0\.0\.1:\d+)/)
  const workers = Array.from({ length: workerCount }, (_, i) =>
    start(`worker-${i + 1}`, [
      "worker",
      "--tracker",
      url,
      "--token",
      token,
      "--jobs",
      jobs,
      "--id",
      `w${i + 1}`,
      "--slots",
      "16"
    ])
  )
  await Promise.all(workers.map((worker) => worker.waitFor(/listening on http/)))
  // Registration is renewed by the worker; give the first one a moment to reach the tracker.
  await sleep(200)

  const client = httpTrackerClient({ baseUrl: url, token, fetch: globalThis.fetch, timeoutMs: 15_000 })
  const begun = performance.now()
  const instanceId = await Effect.runPromise(client.submit({ job: "bench-noop", params: { n } as never }))
  let status: InstanceStatus
  for (;;) {
    status = await Effect.runPromise(client.status(instanceId))
    if (status.outcome !== null) break
    if (performance.now() - begun > timeoutMs)
      throw new Error(`no outcome within ${timeoutMs / 1000} s: ${JSON.stringify(status.progress.byName)}`)
    await sleep(10)
  }
  const seconds = (performance.now() - begun) / 1000
  const outcome = status.outcome
  const counted = outcome.ok ? (JSON.parse(outcome.result ?? "null") as unknown) : undefined
  // Every sub-task plus the root reach reduce.
  if (!outcome.ok || counted !== n + 1)
    throw new Error(`wrong outcome ${JSON.stringify(outcome)}; expected ${n + 1} results`)
  const byWorker = Object.fromEntries(
    Object.entries(status.progress.byWorker).map(([id, progress]) => [id, progress.succeeded])
  )
  const trackerRss = peakRssOf(tracker.child.pid)
  const workerRss = workers.map((worker) => peakRssOf(worker.child.pid))
  emit({
    n,
    store: storeKind,
    workers: workerCount,
    seconds,
    perSecond: n / seconds,
    peakRss: peakRssBytes(),
    trackerPeakRss: trackerRss,
    workerPeakRss: workerRss,
    succeededByWorker: byWorker
  })
} catch (error) {
  console.error(`http: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
} finally {
  killAll()
  await Promise.all(
    started.map(({ child }) =>
      child.exitCode !== null || child.signalCode !== null ? undefined : new Promise((done) => child.once("exit", done))
    )
  )
  rmSync(folder, { recursive: true, force: true })
}
