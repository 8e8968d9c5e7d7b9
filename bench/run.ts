/**
 * The taskfold bench: `pnpm bench` (full) or `pnpm bench --quick`. Every figure is the median of several
 * runs (5 full, 3 quick, or `--runs K`), each heavy run in a fresh child process so its peak RSS is its
 * own. Prints a table with each target beside its figure and writes bench/results.json. Targets are
 * shown, never asserted: the exit code is 1 only when a run crashed, never because a figure is low.
 * `--only machine,inprocess,sqlite,http,bullmq` runs a subset. See bench/README.md.
 */
import { writeFileSync } from "node:fs"
import { cpus, loadavg, totalmem } from "node:os"
import { fileURLToPath } from "node:url"
import { runScenario, type ChildResult } from "./lib/child.ts"
import { argNumber, argValue, median, MiB } from "./lib/common.ts"
import { ensureRedis, startRedis } from "./lib/redis.ts"

const argv = process.argv.slice(2)
const quick = argv.includes("--quick")
const runs = argNumber(argv, "runs", quick ? 3 : 5)
const onlyArg = argValue(argv, "only", "")
const only = new Set(onlyArg === "" ? ["machine", "inprocess", "sqlite", "http", "bullmq"] : onlyArg.split(","))
const sizes = quick
  ? {
      machine: 100_000,
      inprocess: [100_000],
      sqlite: 100_000,
      sqliteLarge: 0,
      http: 100_000,
      httpRuns: 1,
      bullmq: 20_000
    }
  : {
      machine: 1_000_000,
      inprocess: [100_000, 1_000_000],
      sqlite: 1_000_000,
      sqliteLarge: 10_000_000,
      http: 100_000,
      httpRuns: runs,
      bullmq: 100_000
    }
/** The large SQLite run maps in calls of this many items, and gives up after this many seconds. */
const SQLITE_LARGE_CHUNK = 10_000
const SQLITE_LARGE_DEADLINE = 180

type Unit = "perSecond" | "bytes" | "bytesPerTask" | "ratio" | "seconds"

interface Target {
  readonly op: ">=" | "<="
  readonly value: number
  readonly text: string
}

interface Figure {
  readonly label: string
  readonly unit: Unit
  readonly samples: ReadonlyArray<number>
  readonly median: number
  readonly target?: Target
  readonly met?: boolean
}

interface Row {
  readonly id: string
  readonly title: string
  readonly status: "ok" | "skipped" | "failed" | "not built yet"
  readonly message?: string
  readonly figures: Figure[]
  /** Targets of a row without a figure (not built yet, or skipped in this mode), shown beside its message. */
  readonly pendingTargets?: ReadonlyArray<{ readonly label: string; readonly text: string }>
}

const TARGETS = {
  inProcess: { op: ">=", value: 1_000_000, text: "≥ 1,000,000/s" },
  bytesPerTask: { op: "<=", value: 200, text: "≤ 200 B/waiting task" },
  machineRatio: { op: ">=", value: 0.5, text: "≥ 0.5 × limit" },
  bullmqRatio: { op: ">=", value: 100, text: "≥ 100 × BullMQ" },
  sqlite: { op: ">=", value: 300_000, text: "≥ 300,000/s" },
  sqliteRss: { op: "<=", value: 256 * MiB, text: "≤ 256 MiB" },
  http: { op: ">=", value: 100_000, text: "≥ 100,000/s" }
} as const satisfies Record<string, Target>

const figure = (
  label: string,
  unit: Unit,
  samples: ReadonlyArray<number>,
  target?: Target,
  value = median(samples)
): Figure => {
  const base = { label, unit, samples, median: value }
  if (target === undefined) return base
  return { ...base, target, met: target.op === ">=" ? value >= target.value : value <= target.value }
}

const count = (value: number): string => Math.round(value).toLocaleString("en-US")
const show = (unit: Unit, value: number): string => {
  if (!Number.isFinite(value)) return "—"
  switch (unit) {
    case "perSecond":
      return `${count(value)}/s`
    case "bytes":
      return `${(value / MiB).toFixed(1)} MiB`
    case "bytesPerTask":
      return `${count(value)} B`
    case "ratio":
      return value >= 10 ? `${value.toFixed(1)} ×` : `${value.toFixed(2)} ×`
    case "seconds":
      return `${value.toFixed(2)} s`
  }
}

const log = (line: string): void => console.log(line)
const rows: Row[] = []
let crashed = false

const failed = (id: string, title: string, error: unknown): Row => {
  crashed = true
  const message = error instanceof Error ? error.message : String(error)
  log(`  FAILED: ${message}`)
  return { id, title, status: "failed", message, figures: [] }
}

// ---------------------------------------------------------------------------------------------------------
// 1. The machine alone against the plain-JavaScript limit.

const machineScenario = async (): Promise<void> => {
  const n = sizes.machine
  const title = `machine only, ${count(n)} sub-tasks`
  log(`\n${title}: createInstance + step, no IO, against a plain-JS loop (median of ${runs})`)
  try {
    const machine: ChildResult[] = []
    const plain: ChildResult[] = []
    // Interleaved, so drift in the machine's load hits both alike.
    for (let i = 0; i < runs; i++) {
      machine.push(
        ...(await repeatOnce("machine", i, () => runScenario("machine", ["--mode", "machine", "--n", String(n)])))
      )
      plain.push(
        ...(await repeatOnce("plain-JS", i, () => runScenario("machine", ["--mode", "plain", "--n", String(n)])))
      )
    }
    const m = median(machine.map((r) => r.perSecond))
    const p = median(plain.map((r) => r.perSecond))
    rows.push({
      id: "machine",
      title,
      status: "ok",
      figures: [
        figure(
          "machine sub-tasks/s",
          "perSecond",
          machine.map((r) => r.perSecond)
        ),
        figure(
          "plain-JS limit sub-tasks/s",
          "perSecond",
          plain.map((r) => r.perSecond)
        ),
        figure(
          "machine / limit",
          "ratio",
          machine.map((r, i) => r.perSecond / (plain[i]?.perSecond ?? Number.NaN)),
          TARGETS.machineRatio,
          m / p
        ),
        figure(
          "machine peak RSS",
          "bytes",
          machine.map((r) => r.peakRss)
        ),
        figure(
          "plain-JS peak RSS",
          "bytes",
          plain.map((r) => r.peakRss)
        )
      ]
    })
  } catch (error) {
    rows.push(failed("machine", title, error))
  }
}

const repeatOnce = async (label: string, i: number, make: () => Promise<ChildResult>): Promise<ChildResult[]> => {
  const result = await make()
  const rate = result.perSecond > 0 ? `, ${count(result.perSecond)}/s` : ""
  log(
    `  ${label} ${i + 1}/${runs}: ${result.seconds.toFixed(3)} s${rate}, ` +
      `peak RSS ${(result.peakRss / MiB).toFixed(0)} MiB`
  )
  return [result]
}

// ---------------------------------------------------------------------------------------------------------
// 2. runJob in one process with the memory store.

const inProcess = new Map<number, ChildResult[]>()
const baseline: ChildResult[] = []

const runInProcess = async (ns: ReadonlyArray<number>): Promise<void> => {
  for (let i = 0; i < runs; i++) {
    baseline.push(...(await repeatOnce("empty run (baseline RSS)", i, () => runScenario("inprocess", ["--n", "0"]))))
    for (const n of ns) {
      const list = inProcess.get(n) ?? []
      list.push(...(await repeatOnce(`runJob ${count(n)}`, i, () => runScenario("inprocess", ["--n", String(n)]))))
      inProcess.set(n, list)
    }
  }
}

const inProcessRow = (n: number): Row => {
  const results = inProcess.get(n) ?? []
  const base = median(baseline.map((r) => r.peakRss))
  return {
    id: `inprocess-${n}`,
    title: `in-process, memory store, ${count(n)} sub-tasks, 4 workers`,
    status: "ok",
    figures: [
      figure(
        "sub-tasks/s",
        "perSecond",
        results.map((r) => r.perSecond),
        TARGETS.inProcess
      ),
      figure(
        "peak RSS",
        "bytes",
        results.map((r) => r.peakRss)
      ),
      figure(
        "bytes per task",
        "bytesPerTask",
        results.map((r) => (r.peakRss - base) / n),
        TARGETS.bytesPerTask
      ),
      figure(
        "empty-run RSS (baseline)",
        "bytes",
        baseline.map((r) => r.peakRss)
      )
    ]
  }
}

const inProcessScenario = async (): Promise<void> => {
  log(
    "\nin-process: runJob, memory store, 4 workers × 16 slots, " +
      `N = ${sizes.inprocess.map(count).join(" and ")} (median of ${runs})`
  )
  try {
    await runInProcess(sizes.inprocess)
    for (const n of sizes.inprocess) rows.push(inProcessRow(n))
  } catch (error) {
    rows.push(failed("inprocess", "in-process, memory store", error))
  }
  await waitingScenario(Math.max(...sizes.inprocess))
}

/** The same job in pull mode, so its sub-tasks stay waiting: live memory per waiting task after a full collection. */
const waitingScenario = async (n: number): Promise<void> => {
  const title = `in-process, ${count(n)} sub-tasks waiting`
  log(`\n${title}: live heap + external memory per waiting task, after a full collection (median of ${runs})`)
  try {
    const results: ChildResult[] = []
    for (let i = 0; i < runs; i++) {
      const result = await runScenario("waiting", ["--n", String(n)])
      log(
        `  waiting ${i + 1}/${runs}: ${count(result["bytesPerWaitingTask"] as number)} B per waiting task, ` +
          `peak RSS ${(result.peakRss / MiB).toFixed(0)} MiB`
      )
      results.push(result)
    }
    rows.push({
      id: `waiting-${n}`,
      title,
      status: "ok",
      figures: [
        figure(
          "live bytes per waiting task",
          "bytesPerTask",
          results.map((r) => r["bytesPerWaitingTask"] as number),
          TARGETS.bytesPerTask
        ),
        figure(
          "peak RSS",
          "bytes",
          results.map((r) => r.peakRss)
        )
      ]
    })
  } catch (error) {
    rows.push(failed("waiting", title, error))
  }
}

// ---------------------------------------------------------------------------------------------------------
// 3. runJob in one process with the SQLite store on a file (WAL).

const sqliteScenario = async (): Promise<void> => {
  const n = sizes.sqlite
  const title = `sqlite store (a file, WAL), ${count(n)} sub-tasks, 4 workers`
  log(`\n${title}: runJob, the root maps N no-op items in one call (median of ${runs})`)
  try {
    const results: ChildResult[] = []
    for (let i = 0; i < runs; i++)
      results.push(...(await repeatOnce(`sqlite ${count(n)}`, i, () => runScenario("sqlite", ["--n", String(n)]))))
    rows.push({
      id: `sqlite-${n}`,
      title,
      status: "ok",
      figures: [
        figure(
          "sub-tasks/s",
          "perSecond",
          results.map((r) => r.perSecond),
          TARGETS.sqlite
        ),
        figure(
          "peak RSS",
          "bytes",
          results.map((r) => r.peakRss)
        ),
        figure(
          "database file + WAL at the end",
          "bytes",
          results.map((r) => r["dbBytes"] as number)
        )
      ]
    })
  } catch (error) {
    rows.push(failed("sqlite", title, error))
  }
  if (sizes.sqliteLarge > 0) await sqliteLargeScenario(sizes.sqliteLarge)
  else {
    rows.push({
      id: "sqlite-large",
      title: "sqlite store, 10,000,000 sub-tasks",
      status: "skipped",
      message: "full run only",
      figures: [],
      pendingTargets: [{ label: "peak RSS", text: TARGETS.sqliteRss.text }]
    })
  }
}

/** One run of a very large job on SQLite, the root mapping in calls of SQLITE_LARGE_CHUNK items: its peak RSS. */
const sqliteLargeScenario = async (n: number): Promise<void> => {
  const title = `sqlite store, ${count(n)} sub-tasks, 4 workers`
  log(
    `\n${title}: the root maps in calls of ${count(SQLITE_LARGE_CHUNK)} items; ` +
      `one run, given up after ${SQLITE_LARGE_DEADLINE} s`
  )
  try {
    const args = ["--n", String(n), "--chunk", String(SQLITE_LARGE_CHUNK), "--deadline", String(SQLITE_LARGE_DEADLINE)]
    const result = await runScenario("sqlite", args, (SQLITE_LARGE_DEADLINE + 60) * 1000)
    const completed = result["completed"] === true
    const done = result["done"] as number
    log(
      `  sqlite ${count(n)}: ${completed ? "done" : `gave up with ${count(done)} done`} ` +
        `in ${result.seconds.toFixed(1)} s, ${count(result.perSecond)}/s, ` +
        `peak RSS ${(result.peakRss / MiB).toFixed(0)} MiB`
    )
    const figures = completed
      ? [
          figure("peak RSS", "bytes", [result.peakRss], TARGETS.sqliteRss),
          figure("sub-tasks/s", "perSecond", [result.perSecond]),
          figure("end to end", "seconds", [result.seconds]),
          figure("database file + WAL at the end", "bytes", [result["dbBytes"] as number])
        ]
      : [
          // Not finished: the peak so far is shown beside the target, without judging it.
          {
            ...figure(`peak RSS until given up (${count(done)} of ${count(n)} done)`, "bytes", [result.peakRss]),
            target: TARGETS.sqliteRss
          },
          figure("sub-tasks/s until given up", "perSecond", [result.perSecond]),
          figure("given up after", "seconds", [result.seconds])
        ]
    rows.push({
      id: "sqlite-large",
      title: completed ? title : `${title} — not finished within ${SQLITE_LARGE_DEADLINE} s`,
      status: "ok",
      figures
    })
  } catch (error) {
    rows.push(failed("sqlite-large", title, error))
  }
}

// ---------------------------------------------------------------------------------------------------------
// 4. A tracker server and 2 worker processes over HTTP on 127.0.0.1.

const httpScenario = async (): Promise<void> => {
  const n = sizes.http
  const httpRuns = sizes.httpRuns
  const title = `HTTP, tracker (SQLite file) + 2 worker processes, ${count(n)} sub-tasks`
  log(`\n${title}: submit to outcome on 127.0.0.1 (median of ${httpRuns})`)
  try {
    const results: ChildResult[] = []
    for (let i = 0; i < httpRuns; i++) {
      const result = await runScenario("http", ["--n", String(n), "--store", "sqlite", "--workers", "2"])
      log(
        `  http ${i + 1}/${httpRuns}: ${result.seconds.toFixed(3)} s, ${count(result.perSecond)}/s, ` +
          `tracker peak RSS ${(((result["trackerPeakRss"] as number | null) ?? Number.NaN) / MiB).toFixed(0)} MiB, ` +
          `sub-tasks by worker ${JSON.stringify(result["succeededByWorker"])}`
      )
      results.push(result)
    }
    const workerPeak = (r: ChildResult): number =>
      Math.max(...((r["workerPeakRss"] as Array<number | null>) ?? []).map((v) => v ?? Number.NaN))
    rows.push({
      id: "http",
      title,
      status: "ok",
      figures: [
        figure(
          "sub-tasks/s",
          "perSecond",
          results.map((r) => r.perSecond),
          TARGETS.http
        ),
        figure(
          "submit to outcome",
          "seconds",
          results.map((r) => r.seconds)
        ),
        figure(
          "peak RSS, tracker",
          "bytes",
          results.map((r) => (r["trackerPeakRss"] as number | null) ?? Number.NaN)
        ),
        figure("peak RSS, larger worker", "bytes", results.map(workerPeak))
      ]
    })
  } catch (error) {
    rows.push(failed("http", title, error))
  }
}

// ---------------------------------------------------------------------------------------------------------
// 5. The BullMQ baseline on a redis-server of our own.

let redisVersion: string | null = null

const bullmqScenario = async (): Promise<void> => {
  const n = sizes.bullmq
  const title = `BullMQ flow, ${count(n)} children + summing parent`
  log(`\n${title}: redis-server on 127.0.0.1, 4 workers × concurrency 16 (median of ${runs})`)
  const redis = ensureRedis(log)
  if ("missing" in redis) {
    const message = `skipped, no redis-server: ${redis.missing}`
    log(`  ${message}`)
    rows.push({ id: "bullmq", title, status: "skipped", message, figures: [] })
    return
  }
  redisVersion = redis.version
  log(`  redis-server ${redis.version}`)
  try {
    const bull: ChildResult[] = []
    const redisPeaks: number[] = []
    // taskfold at the same N, in the same run, for the ratio (the in-process scenario may not have it).
    const sameN = inProcess.has(n) ? undefined : ([] as ChildResult[])
    for (let i = 0; i < runs; i++) {
      const server = await startRedis()
      try {
        bull.push(
          ...(await repeatOnce("BullMQ", i, () =>
            runScenario("bullmq", ["--port", String(server.port), "--n", String(n)])
          ))
        )
        const peak = server.peakRss()
        if (peak !== null) redisPeaks.push(peak)
      } finally {
        await server.stop()
      }
      if (sameN !== undefined)
        sameN.push(
          ...(await repeatOnce(`taskfold runJob ${count(n)}`, i, () => runScenario("inprocess", ["--n", String(n)])))
        )
    }
    if (sameN !== undefined) inProcess.set(n, sameN)
    const taskfold = inProcess.get(n) ?? []
    const ours = median(taskfold.map((r) => r.perSecond))
    const theirs = median(bull.map((r) => r.perSecond))
    rows.push({
      id: "bullmq",
      title,
      status: "ok",
      figures: [
        figure(
          "children/s",
          "perSecond",
          bull.map((r) => r.perSecond)
        ),
        figure(
          "end to end",
          "seconds",
          bull.map((r) => r.seconds)
        ),
        figure(
          "peak RSS, bench process",
          "bytes",
          bull.map((r) => r.peakRss)
        ),
        figure("peak RSS, redis-server", "bytes", redisPeaks),
        figure(
          `taskfold in-process, ${count(n)}`,
          "perSecond",
          taskfold.map((r) => r.perSecond)
        ),
        figure("taskfold / BullMQ", "ratio", [], TARGETS.bullmqRatio, ours / theirs)
      ]
    })
  } catch (error) {
    rows.push(failed("bullmq", title, error))
  }
}

// ---------------------------------------------------------------------------------------------------------

const printTable = (): void => {
  const lines: string[][] = [["scenario", "figure", "median", "min – max", "target", ""]]
  for (const row of rows) {
    if (row.status !== "ok") {
      const targets = row.pendingTargets ?? []
      if (targets.length === 0) lines.push([row.title, row.message ?? row.status, "", "", "", ""])
      targets.forEach((target, i) => {
        lines.push([i === 0 ? row.title : "", target.label, row.message ?? row.status, "", target.text, ""])
      })
      continue
    }
    row.figures.forEach((fig, i) => {
      const range =
        fig.samples.length > 1
          ? `${show(fig.unit, Math.min(...fig.samples))} – ${show(fig.unit, Math.max(...fig.samples))}`
          : ""
      lines.push([
        i === 0 ? row.title : "",
        fig.label,
        show(fig.unit, fig.median),
        range,
        fig.target?.text ?? "",
        fig.met === undefined ? "" : fig.met ? "met" : "not met"
      ])
    })
  }
  const widths = lines[0]!.map((_, column) => Math.max(...lines.map((line) => (line[column] ?? "").length)))
  const format = (line: string[]) =>
    line
      .map((cell, column) => (column === 2 ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0)))
      .join("  ")
      .trimEnd()
  console.log("")
  console.log(format(lines[0]!))
  console.log(widths.map((width) => "-".repeat(width)).join("  "))
  let first = true
  for (const line of lines.slice(1)) {
    if (line[0] !== "" && !first) console.log("")
    first = false
    console.log(format(line))
  }
}

const cpu = cpus()
const environment = {
  date: new Date().toISOString(),
  mode: quick ? "quick" : "full",
  runs,
  node: process.version,
  cpus: cpu.length,
  cpuModel: cpu[0]?.model ?? "unknown",
  totalMemory: totalmem(),
  loadAverageAtStart: loadavg()
}
log(
  `taskfold bench (${environment.mode}: median of ${runs} runs, each in a fresh process) — Node ${process.version}, ` +
    `${environment.cpus} × ${environment.cpuModel}, ` +
    `load average ${environment.loadAverageAtStart.map((l) => l.toFixed(2)).join(" ")}`
)
const started = performance.now()
if (only.has("machine")) await machineScenario()
if (only.has("inprocess")) await inProcessScenario()
if (only.has("sqlite")) await sqliteScenario()
if (only.has("http")) await httpScenario()
if (only.has("bullmq")) await bullmqScenario()
const seconds = (performance.now() - started) / 1000

printTable()
const loadAverageAtEnd = loadavg()
console.log(
  `\n${environment.mode} bench took ${seconds.toFixed(0)} s; ` +
    `load average at the end ${loadAverageAtEnd.map((l) => l.toFixed(2)).join(" ")}. ` +
    "Targets are shown, not asserted."
)
const file = fileURLToPath(new URL("./results.json", import.meta.url))
writeFileSync(
  file,
  `${JSON.stringify({ ...environment, loadAverageAtEnd, redisServer: redisVersion, seconds, sizes, rows }, null, 2)}\n`
)
console.log(`wrote ${file}`)
if (crashed) process.exitCode = 1
