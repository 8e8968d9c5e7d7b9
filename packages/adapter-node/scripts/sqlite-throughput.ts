/**
 * Apply throughput of the SQLite store on a WAL file: 100,000 inserts in one batch, then the same tasks
 * updated to Succeeded in batches of 256 (a tracker's dispatch batch), in tasks/s; then the measurement
 * behind core's rows per INSERT statement (CHUNK in packages/core/src/sql/store.ts): the same batch through
 * the store on a driver whose parameter limit admits fewer rows per statement. Prints figures, asserts nothing.
 *
 *   cd /work/main && npx -y pnpm@12.21.0 exec node packages/adapter-node/scripts/sqlite-throughput.ts
 */
import {
  makeSqlStore,
  resolveConfigSync,
  TaskKind,
  TaskStatus,
  type InstanceRow,
  type TaskRow,
  type TaskUpdate
} from "@taskfold/core/adapter"
import { Effect } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { openSqliteDriver, openSqliteStore } from "../src/index.ts"

if (Number(process.versions.node.split(".")[0]) < 24) {
  console.error(`node:sqlite needs Node 24, this is ${process.versions.node}: run me through pnpm exec`)
  process.exit(1)
}

const TASKS = 100_000
const UPDATE_BATCH = 256
const REPEATS = 3

const folder = mkdtempSync(join(tmpdir(), "taskfold-throughput-"))
let files = 0
const freshFile = () => join(folder, `run-${files++}.db`)

const instance: InstanceRow = {
  id: `bench-${globalThis.crypto.randomUUID()}`,
  job: "bench",
  kind: "mapReduce",
  config: resolveConfigSync({}),
  params: "null",
  localWorker: "local",
  startedAt: Date.now(),
  seed: 1,
  nextSeq: TASKS,
  nextRun: 1,
  nextTriggerAt: null,
  context: {},
  runs: [{ run: 0, startedAt: Date.now(), created: TASKS, succeeded: 0, failed: 0, finalCreated: false }],
  history: [],
  outcome: null,
  outcomeAcked: false
}

const rows: TaskRow[] = Array.from({ length: TASKS }, (_, seq) => ({
  id: seq === 0 ? "0" : `0.${seq}`,
  seq,
  run: 0,
  name: seq === 0 ? "ROOT" : "item",
  kind: seq === 0 ? TaskKind.Root : TaskKind.Sub,
  body: JSON.stringify(seq),
  status: TaskStatus.Waiting,
  worker: null,
  attempt: 0,
  failures: 0,
  redeliveries: 0,
  childCount: seq === 0 ? TASKS - 1 : 0,
  dueAt: null,
  result: null,
  resultCut: false,
  lastError: null
}))

const succeeded = (row: TaskRow): TaskUpdate => ({
  id: row.id,
  seq: row.seq,
  status: TaskStatus.Succeeded,
  worker: `worker-${row.seq % 4}`,
  attempt: 0,
  failures: 0,
  redeliveries: 0,
  childCount: row.childCount,
  dueAt: null,
  result: String(row.seq * 2),
  resultCut: false,
  lastError: null
})

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number
const perSecond = (count: number, ms: number) => Math.round((count / ms) * 1000).toLocaleString("en-US")

/** One run through the store: returns the milliseconds of the insert batch and of all update batches. */
const storeRun = (): { insertMs: number; updateMs: number } => {
  const store = openSqliteStore(freshFile())
  const apply = (inserts: TaskRow[], updates: TaskUpdate[]) =>
    Effect.runSync(store.apply({ instance, inserts, updates, deleteRuns: [], deleteInstance: false }))
  let started = performance.now()
  apply(rows, [])
  const insertMs = performance.now() - started
  started = performance.now()
  for (let from = 0; from < TASKS; from += UPDATE_BATCH) apply([], rows.slice(from, from + UPDATE_BATCH).map(succeeded))
  const updateMs = performance.now() - started
  store.close()
  return { insertMs, updateMs }
}

/** Columns bound per inserted task; one more parameter per statement names the instance. */
const INSERT_WIDTH = 16

/** Inserts all rows in one batch, `perStatement` rows per INSERT: the driver admits no more parameters. */
const insertRun = (perStatement: number): number => {
  const driver = openSqliteDriver(freshFile())
  const store = Effect.runSync(makeSqlStore({ ...driver, maxParams: 1 + perStatement * INSERT_WIDTH }))
  const started = performance.now()
  Effect.runSync(store.apply({ instance, inserts: rows, updates: [], deleteRuns: [], deleteInstance: false }))
  const ms = performance.now() - started
  driver.close()
  return ms
}

try {
  const versions = `node ${process.versions.node}, SQLite ${process.versions.sqlite}`
  console.log(`${versions}; WAL file, synchronous=NORMAL; median of ${REPEATS}`)
  const runs = Array.from({ length: REPEATS }, storeRun)
  const insertMs = median(runs.map((run) => run.insertMs))
  const updateMs = median(runs.map((run) => run.updateMs))
  const figures = (ms: number) => `${ms.toFixed(0).padStart(5)} ms  ${perSecond(TASKS, ms)} tasks/s`
  const tasks = TASKS.toLocaleString("en-US")
  console.log(`store.apply, ${tasks} inserts in one batch:      ${figures(insertMs)}`)
  console.log(
    `store.apply, ${tasks} updates in batches of ${UPDATE_BATCH}: ${figures(updateMs)}` +
      ` (${Math.ceil(TASKS / UPDATE_BATCH)} transactions)`
  )
  console.log(`insert strategy, ${TASKS.toLocaleString("en-US")} rows in one transaction:`)
  const notes: Record<number, string> = { 6: " (Durable Object SQL)", 16: " (kept)" }
  for (const perStatement of [1, 4, 6, 16]) {
    const ms = median(Array.from({ length: REPEATS }, () => insertRun(perStatement)))
    const label = `${perStatement} row${perStatement === 1 ? "" : "s"} per INSERT${notes[perStatement] ?? ""}`
    console.log(`  ${label.padEnd(26)} ${ms.toFixed(0).padStart(5)} ms  ${perSecond(TASKS, ms)} rows/s`)
  }
} finally {
  rmSync(folder, { recursive: true, force: true })
}
