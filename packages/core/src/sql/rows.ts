import { Effect, Schema } from "effect"
import { StoreError } from "../model/errors.ts"
import { InstanceRow } from "../model/instance.ts"
import type { StoredResult } from "../model/store.ts"
import type { TaskRow, TaskUpdate } from "../model/task.ts"
import type { SqlRow, SqlValue } from "./driver.ts"

/**
 * The columns of a stored task after its instance key, in the order inserts bind them: the column, the
 * TaskRow field it holds, its type. `body ANY` keeps a body's type: TEXT comes back as a string, a BLOB
 * as a Uint8Array. Booleans are 0/1. The writers and readers below follow this order and these names.
 */
export const TASK_COLUMNS = [
  ["seq", "seq", "INTEGER NOT NULL"],
  ["id", "id", "TEXT NOT NULL"],
  ["run", "run", "INTEGER NOT NULL"],
  ["name", "name", "TEXT NOT NULL"],
  ["kind", "kind", "INTEGER NOT NULL"],
  ["body", "body", "ANY NOT NULL"],
  ["status", "status", "INTEGER NOT NULL"],
  ["worker", "worker", "TEXT"],
  ["attempt", "attempt", "INTEGER NOT NULL"],
  ["failures", "failures", "INTEGER NOT NULL"],
  ["redeliveries", "redeliveries", "INTEGER NOT NULL"],
  ["child_count", "childCount", "INTEGER NOT NULL"],
  ["due_at", "dueAt", "REAL"],
  ["result", "result", "TEXT"],
  ["result_cut", "resultCut", "INTEGER NOT NULL"],
  ["last_error", "lastError", "TEXT"]
] as const satisfies ReadonlyArray<readonly [string, keyof TaskRow, string]>

/** Fields fixed when a task is created; the rest is what an update rewrites. */
const FIXED: ReadonlySet<string> = new Set(["seq", "id", "run", "name", "kind", "body"])

const selected = (columns: ReadonlyArray<readonly [string, string, string]>, table = "") =>
  columns
    .map(([column, field]) => (column === field ? `${table}${column}` : `${table}${column} AS ${field}`))
    .join(", ")

/** Column names in insert order. */
export const TASK_COLUMN_LIST = TASK_COLUMNS.map(([column]) => column).join(", ")
/** Columns an update sets, in the order `writeUpdate` binds them after seq and id. */
export const UPDATED_COLUMNS = TASK_COLUMNS.filter(([, field]) => !FIXED.has(field)).map(([column]) => column)
/** A task's columns, of the table named `t`, renamed to TaskRow's fields, for `readTask`. */
export const TASK_SELECT = selected(TASK_COLUMNS, "t.")
const RESULT_FIELDS: ReadonlySet<string> = new Set(["id", "seq", "name", "status", "result", "resultCut", "lastError"])
/** A terminal task's columns as StoredResult names them, for `readResult`. */
export const RESULT_SELECT = selected(TASK_COLUMNS.filter(([, field]) => RESULT_FIELDS.has(field)))

/** Parameters `writeTask` binds per task. */
export const INSERT_WIDTH = TASK_COLUMNS.length
/** Parameters `writeUpdate` binds per update: seq and id to find the task, then UPDATED_COLUMNS. */
export const UPDATE_WIDTH = 2 + UPDATED_COLUMNS.length

// Written out field by field rather than looped over TASK_COLUMNS: this is the hot path of a batch, and a
// loop of dynamic property reads costs measurably more per row.

/** Writes a task's insert parameters into `params` from `at`; returns the index after them. */
export const writeTask = (params: SqlValue[], at: number, row: TaskRow): number => {
  let p = at
  params[p++] = row.seq
  params[p++] = row.id
  params[p++] = row.run
  params[p++] = row.name
  params[p++] = row.kind
  params[p++] = row.body
  params[p++] = row.status
  params[p++] = row.worker
  params[p++] = row.attempt
  params[p++] = row.failures
  params[p++] = row.redeliveries
  params[p++] = row.childCount
  params[p++] = row.dueAt
  params[p++] = row.result
  params[p++] = row.resultCut ? 1 : 0
  params[p++] = row.lastError
  return p
}

/** Writes an update's parameters into `params` from `at`; returns the index after them. */
export const writeUpdate = (params: SqlValue[], at: number, update: TaskUpdate): number => {
  let p = at
  params[p++] = update.seq
  params[p++] = update.id
  params[p++] = update.status
  params[p++] = update.worker
  params[p++] = update.attempt
  params[p++] = update.failures
  params[p++] = update.redeliveries
  params[p++] = update.childCount
  params[p++] = update.dueAt
  params[p++] = update.result
  params[p++] = update.resultCut ? 1 : 0
  params[p++] = update.lastError
  return p
}

/** A plain TaskRow from a row selected with TASK_SELECT (drivers may give null-prototype rows). */
export const readTask = (c: SqlRow): TaskRow => ({
  id: c["id"] as string,
  seq: c["seq"] as number,
  run: c["run"] as number,
  name: c["name"] as string,
  kind: c["kind"] as TaskRow["kind"],
  body: c["body"] as TaskRow["body"],
  status: c["status"] as TaskRow["status"],
  worker: c["worker"] as string | null,
  attempt: c["attempt"] as number,
  failures: c["failures"] as number,
  redeliveries: c["redeliveries"] as number,
  childCount: c["childCount"] as number,
  dueAt: c["dueAt"] as number | null,
  result: c["result"] as string | null,
  resultCut: c["resultCut"] !== 0,
  lastError: c["lastError"] as string | null
})

/** A StoredResult from a row selected with RESULT_SELECT. */
export const readResult = (c: SqlRow): StoredResult => ({
  id: c["id"] as string,
  seq: c["seq"] as number,
  name: c["name"] as string,
  status: c["status"] as number,
  result: c["result"] as string | null,
  resultCut: c["resultCut"] !== 0,
  lastError: c["lastError"] as string | null
})

const decodeInstance = Schema.decodeUnknownSync(InstanceRow)

/** An instance from its stored JSON row; a row that does not decode is corrupt, not misread. */
export const readInstance = (instanceId: string, json: SqlValue): Effect.Effect<InstanceRow, StoreError> =>
  Effect.try({
    try: () => decodeInstance(JSON.parse(json as string)),
    catch: (error) =>
      new StoreError({
        reason: "corrupt",
        message: `the stored row of instance ${instanceId} does not decode: ${String(error)}`
      })
  })
