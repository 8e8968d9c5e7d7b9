import { Effect } from "effect"
import { StoreError } from "../model/errors.ts"
import type { StoredInstance, TerminalCount, WriteBatch } from "../model/store.ts"
import type { TaskRow, TaskUpdate } from "../model/task.ts"
import type { TaskStoreShape } from "../ports/task-store.ts"
import type { SqlDriver, SqlRow, SqlStatement, SqlValue } from "./driver.ts"
import {
  INSERT_WIDTH,
  RESULT_SELECT,
  readInstance,
  readResult,
  readTask,
  TASK_COLUMN_LIST,
  TASK_SELECT,
  UPDATE_WIDTH,
  UPDATED_COLUMNS,
  writeTask,
  writeUpdate
} from "./rows.ts"
import { LIVE, migrateSqlSchema, TERMINAL } from "./schema.ts"

/**
 * Rows per multi-row INSERT or UPDATE, unless the driver's parameter limit allows fewer. Measured on
 * node:sqlite, 100,000 rows in one transaction (scripts/sqlite-throughput.ts): 16 rows per INSERT ~750k
 * rows/s against ~570k for one, no gain beyond; updates gain less but lose nothing.
 */
const CHUNK = 16

/** The instance's key, looked up once per statement; every statement names its instance by id. */
const KEY = "(SELECT key FROM taskfold_instances WHERE id = ?)"

const PUT_INSTANCE = `INSERT INTO taskfold_instances (id, row) VALUES (?, ?)
  ON CONFLICT (id) DO UPDATE SET row = excluded.row`
const DELETE_TASKS = `DELETE FROM taskfold_tasks WHERE instance = ${KEY}`
const DELETE_INSTANCE = "DELETE FROM taskfold_instances WHERE id = ?"
// One parameter, a JSON array, whatever the count: no statement per list length, no parameter limit.
const DELETE_RUNS = `DELETE FROM taskfold_tasks WHERE instance = ${KEY} AND run IN (SELECT value FROM json_each(?))`
// CROSS JOIN keeps the ids outermost, one search of the (instance, id) index each: with IN (…) the planner
// scans the whole instance instead.
const TASKS_BY_ID = `SELECT ${TASK_SELECT} FROM json_each(?) AS j CROSS JOIN taskfold_tasks AS t
  WHERE t.instance = ${KEY} AND t.id = j.value ORDER BY t.seq`
const RESULTS = `SELECT ${RESULT_SELECT} FROM taskfold_tasks
  WHERE instance = ${KEY} AND run = ? AND seq > ? AND ${TERMINAL} ORDER BY seq LIMIT ?`
const INSTANCE = "SELECT row FROM taskfold_instances WHERE id = ?"
const LIVE_TASKS = `SELECT ${TASK_SELECT} FROM taskfold_tasks AS t WHERE instance = ${KEY} AND ${LIVE} ORDER BY seq`
const TERMINAL_COUNTS = `SELECT name, worker, status, count(*) AS count FROM taskfold_tasks
  WHERE instance = ${KEY} AND ${TERMINAL} GROUP BY name, worker, status`
const INSTANCE_IDS = "SELECT id FROM taskfold_instances ORDER BY key"

const values = (rows: number, width: number): string =>
  Array(rows)
    .fill(`(${Array(width).fill("?").join(", ")})`)
    .join(", ")

// The instance key joins in once; the rows' values follow it, the instance id is the last parameter.
const insertSql = (rows: number): string =>
  `INSERT INTO taskfold_tasks (instance, ${TASK_COLUMN_LIST})
   SELECT i.key, v.* FROM taskfold_instances AS i, (VALUES ${values(rows, INSERT_WIDTH)}) AS v WHERE i.id = ?`

// column1 and column2 of the VALUES rows are seq and id: a seq holding another task matches nothing. The
// unary + keeps the planner off the (instance, id) index: the primary key alone finds the row, one search
// instead of two (measured on node:sqlite, ~12 % more updates per second).
const updateSql = (rows: number): string =>
  `UPDATE taskfold_tasks AS t SET ${UPDATED_COLUMNS.map((column, i) => `${column} = v.column${i + 3}`).join(", ")}
   FROM (VALUES ${values(rows, UPDATE_WIDTH)}) AS v
   WHERE t.instance = ${KEY} AND t.seq = v.column1 AND +t.id = +v.column2`

/** The SQL for each row count, built once: drivers cache prepared statements by their text. */
const memo = (build: (rows: number) => string): ((rows: number) => string) => {
  const built: string[] = []
  return (rows) => (built[rows] ??= build(rows))
}

const notStored = (instanceId: string, chunk: ReadonlyArray<TaskUpdate>): StoreError => {
  const named = chunk.map((update) => `${update.id} (seq ${update.seq})`)
  return new StoreError({
    reason: "not-found",
    message:
      named.length === 1
        ? `task ${named[0]} of ${instanceId} is not stored`
        : `one of the tasks ${named.join(", ")} of ${instanceId} is not stored`
  })
}

const terminalCount = (c: SqlRow): TerminalCount => ({
  name: c["name"] as string,
  worker: c["worker"] as string | null,
  status: c["status"] as number,
  count: c["count"] as number
})

/**
 * A TaskStore over a SQL driver (R-REC-1 with a durable engine). Every write batch is one transaction: a batch
 * that fails anywhere, a failed check included, changes nothing. Inserts and updates go several rows per
 * statement, within the driver's parameter limit; a batch names each task at most once (the machine's dirty
 * list). Creating the store brings the tables to the current schema version.
 */
export const makeSqlStore = (driver: SqlDriver): Effect.Effect<TaskStoreShape, StoreError> => {
  // One parameter per statement names the instance.
  const insertRows = Math.min(CHUNK, Math.floor((driver.maxParams - 1) / INSERT_WIDTH))
  const updateRows = Math.min(CHUNK, Math.floor((driver.maxParams - 1) / UPDATE_WIDTH))
  if (insertRows < 1 || updateRows < 1) {
    return Effect.fail(
      new StoreError({
        reason: "unavailable",
        message: `a driver taking ${driver.maxParams} parameters per statement cannot hold one task row`
      })
    )
  }
  const inserts = memo(insertSql)
  const updates = memo(updateSql)

  function* insertStatements(instanceId: string, rows: ReadonlyArray<TaskRow>): Generator<SqlStatement> {
    for (let from = 0; from < rows.length; from += insertRows) {
      const count = Math.min(insertRows, rows.length - from)
      const params: SqlValue[] = new Array(count * INSERT_WIDTH + 1)
      let p = 0
      for (let i = from; i < from + count; i++) p = writeTask(params, p, rows[i] as TaskRow)
      params[p] = instanceId
      yield { sql: inserts(count), params }
    }
  }

  function* updateStatements(instanceId: string, all: ReadonlyArray<TaskUpdate>): Generator<SqlStatement> {
    for (let from = 0; from < all.length; from += updateRows) {
      const count = Math.min(updateRows, all.length - from)
      const params: SqlValue[] = new Array(count * UPDATE_WIDTH + 1)
      let p = 0
      for (let i = from; i < from + count; i++) p = writeUpdate(params, p, all[i] as TaskUpdate)
      params[p] = instanceId
      const chunk = from
      yield {
        sql: updates(count),
        params,
        expect: { changes: count, mismatch: () => notStored(instanceId, all.slice(chunk, chunk + count)) }
      }
    }
  }

  function* writeStatements(batch: WriteBatch): Generator<SqlStatement> {
    const id = batch.instance.id
    if (batch.deleteInstance) {
      yield { sql: DELETE_TASKS, params: [id] }
      yield { sql: DELETE_INSTANCE, params: [id] }
      return
    }
    yield { sql: PUT_INSTANCE, params: [id, JSON.stringify(batch.instance)] }
    yield* insertStatements(id, batch.inserts)
    yield* updateStatements(id, batch.updates)
    if (batch.deleteRuns.length > 0) yield { sql: DELETE_RUNS, params: [id, JSON.stringify(batch.deleteRuns)] }
  }

  // One read transaction, so the row, the live tasks and the counts are one consistent snapshot.
  const load = (instanceId: string): Effect.Effect<StoredInstance | undefined, StoreError> =>
    Effect.flatMap(
      driver.transaction(
        [
          { sql: INSTANCE, params: [instanceId] },
          { sql: LIVE_TASKS, params: [instanceId] },
          { sql: TERMINAL_COUNTS, params: [instanceId] }
        ],
        "read"
      ),
      ([found, live = [], terminal = []]) => {
        const row = found?.[0]
        if (row === undefined) return Effect.succeed(undefined)
        return Effect.map(readInstance(instanceId, row["row"] ?? null), (instance) => ({
          instance,
          live: live.map(readTask),
          terminal: terminal.map(terminalCount)
        }))
      }
    )

  return Effect.as(migrateSqlSchema(driver), {
    apply: (batch) => Effect.asVoid(driver.transaction(writeStatements(batch))),
    readTasks: (instanceId, ids) =>
      ids.length === 0
        ? Effect.succeed([])
        : Effect.map(driver.execute({ sql: TASKS_BY_ID, params: [JSON.stringify(ids), instanceId] }), (rows) =>
            rows.map(readTask)
          ),
    readResults: (instanceId, run, afterSeq, limit) =>
      Effect.map(driver.execute({ sql: RESULTS, params: [instanceId, run, afterSeq, limit] }), (rows) =>
        rows.map(readResult)
      ),
    load,
    listInstances: () =>
      Effect.map(driver.execute({ sql: INSTANCE_IDS, params: [] }), (rows) => rows.map((row) => row["id"] as string))
  })
}
