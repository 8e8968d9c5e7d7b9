/**
 * Apply throughput of the SQLite store on a WAL file: 100,000 inserts in one batch, then the same tasks
 * updated to Succeeded in batches of 256 (a tracker's dispatch batch), in tasks/s; then the measurement
 * behind the store's rows per INSERT statement (INSERT_CHUNK). Prints figures, asserts nothing.
 *
 *   cd /work/main && npx -y pnpm@12.21.0 exec node packages/adapter-node/scripts/sqlite-throughput.ts
 */
import {
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
import { DatabaseSync, type SQLInputValue } from "node:sqlite"
import { openSqliteStore } from "../src/index.ts"
import { prepareDatabase } from "../src/sqlite/schema.ts"
import { INSERT_CHUNK, insertSql, PARAMS_PER_ROW, writeRow } from "../src/sqlite/statements.ts"

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

/** Inserts all rows in one transaction, `perStatement` rows per INSERT, on the store's own schema and statements. */
const insertRun = (perStatement: number): number => {
  const db = new DatabaseSync(freshFile())
  prepareDatabase(db, false)
  const many = db.prepare(insertSql(perStatement))
  const one = db.prepare(insertSql(1))
  const started = performance.now()
  db.exec("BEGIN IMMEDIATE")
  let next = 0
  const params: SQLInputValue[] = new Array(perStatement * PARAMS_PER_ROW)
  for (; next + perStatement <= TASKS; next += perStatement) {
    let p = 0
    for (let i = next; i < next + perStatement; i++) p = writeRow(params, p, 1, rows[i] as TaskRow)
    many.run(...params)
  }
  const single: SQLInputValue[] = new Array(PARAMS_PER_ROW)
  for (; next < TASKS; next++) {
    writeRow(single, 0, 1, rows[next] as TaskRow)
    one.run(...single)
  }
  db.exec("COMMIT")
  const ms = performance.now() - started
  db.close()
  return ms
}

try {
  console.log(
    `node ${process.versions.node}, SQLite ${process.versions.sqlite}; WAL file, synchronous=NORMAL; median of ${REPEATS}`
  )
  const runs = Array.from({ length: REPEATS }, storeRun)
  const insertMs = median(runs.map((run) => run.insertMs))
  const updateMs = median(runs.map((run) => run.updateMs))
  console.log(
    `store.apply, ${TASKS.toLocaleString("en-US")} inserts in one batch:      ${insertMs.toFixed(0).padStart(5)} ms  ${perSecond(TASKS, insertMs)} tasks/s`
  )
  console.log(
    `store.apply, ${TASKS.toLocaleString("en-US")} updates in batches of ${UPDATE_BATCH}: ${updateMs.toFixed(0).padStart(5)} ms  ${perSecond(TASKS, updateMs)} tasks/s` +
      ` (${Math.ceil(TASKS / UPDATE_BATCH)} transactions)`
  )
  console.log(`insert strategy, ${TASKS.toLocaleString("en-US")} rows in one transaction:`)
  for (const perStatement of [1, 4, 16, 64, 256]) {
    const ms = median(Array.from({ length: REPEATS }, () => insertRun(perStatement)))
    const label = `${perStatement} row${perStatement === 1 ? "" : "s"} per INSERT${perStatement === INSERT_CHUNK ? " (kept)" : ""}`
    console.log(`  ${label.padEnd(26)} ${ms.toFixed(0).padStart(5)} ms  ${perSecond(TASKS, ms)} rows/s`)
  }
} finally {
  rmSync(folder, { recursive: true, force: true })
}
