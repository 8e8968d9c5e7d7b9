import type { TaskRow, TaskUpdate } from "@taskfold/core/adapter"
import type { DatabaseSync, SQLInputValue } from "node:sqlite"
import { TASK_SELECT } from "./rows.ts"

/** Columns of a task row, in the order the insert statements bind them. */
const TASK_COLUMNS = `instance, seq, id, run, name, kind, body, status, worker, attempt, failures, redeliveries,
  child_count, due_at, result, result_cut, last_error`
export const PARAMS_PER_ROW = 17

/**
 * Rows per multi-row INSERT. Measured on 100,000 rows in one transaction (scripts/sqlite-throughput.ts):
 * one row per call ~570k rows/s, 16 rows per statement ~750k, no gain beyond (32 to 256: ~720k).
 */
export const INSERT_CHUNK = 16

export const insertSql = (rows: number) =>
  `INSERT INTO tasks (${TASK_COLUMNS}) VALUES ${Array(rows)
    .fill(`(${Array(PARAMS_PER_ROW).fill("?").join(", ")})`)
    .join(", ")}`

/** Writes one row's insert parameters into `params` from index `at`; returns the index after them. */
export const writeRow = (params: SQLInputValue[], at: number, key: number, row: TaskRow): number => {
  let p = at
  params[p++] = key
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

/** Every statement the store runs, prepared once when the database opens. */
export const prepareStatements = (db: DatabaseSync) => {
  const begin = db.prepare("BEGIN IMMEDIATE")
  const beginRead = db.prepare("BEGIN")
  const commit = db.prepare("COMMIT")
  const rollback = db.prepare("ROLLBACK")

  // An upsert that answers with the instance's key, new or existing.
  const putInstance = db.prepare(
    "INSERT INTO instances (id, row) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET row = excluded.row RETURNING key"
  )
  const instanceKey = db.prepare("SELECT key FROM instances WHERE id = ?")
  const instanceRow = db.prepare("SELECT key, row FROM instances WHERE id = ?")
  const instanceIds = db.prepare("SELECT id FROM instances ORDER BY key")
  const deleteInstance = db.prepare("DELETE FROM instances WHERE key = ?")
  const deleteInstanceTasks = db.prepare("DELETE FROM tasks WHERE instance = ?")
  const deleteRun = db.prepare("DELETE FROM tasks WHERE instance = ? AND run = ?")

  const insertChunk = db.prepare(insertSql(INSERT_CHUNK))
  const insertOne = db.prepare(insertSql(1))
  // The id must match too: an update for a seq that holds another task changes nothing and is caught.
  // `+id` keeps the planner off the (instance, id) index: it would look the id up there and then the row
  // by its primary key, two searches where the primary key (instance, seq) alone finds the row. Measured
  // on 100,000 updates in one transaction: ~12 % more updates per second.
  const updateTask = db.prepare(
    `UPDATE tasks SET status = ?, worker = ?, attempt = ?, failures = ?, redeliveries = ?, child_count = ?, due_at = ?,
       result = ?, result_cut = ?, last_error = ?
     WHERE instance = ? AND seq = ? AND +id = ?`
  )

  const taskById = db.prepare(`SELECT ${TASK_SELECT} FROM tasks WHERE instance = ? AND id = ?`)
  // `status >= 5` spelled as in the partial index, so the planner may use it. Measured on 100,000 rows, it
  // rightly prefers the primary key when nearly all rows are terminal (reduce's case), the index when few are.
  const results = db.prepare(
    `SELECT id, seq, name, status, result, result_cut AS resultCut, last_error AS lastError FROM tasks
     WHERE instance = ? AND run = ? AND seq > ? AND status >= 5 ORDER BY seq LIMIT ?`
  )
  const liveTasks = db.prepare(`SELECT ${TASK_SELECT} FROM tasks WHERE instance = ? AND status < 5 ORDER BY seq`)
  const terminalCounts = db.prepare(
    `SELECT name, worker, status, count(*) AS count FROM tasks WHERE instance = ? AND status >= 5 GROUP BY name, worker, status`
  )

  return {
    begin: () => void begin.run(),
    beginRead: () => void beginRead.run(),
    commit: () => void commit.run(),
    rollback: () => void rollback.run(),
    /** Stores the instance row and returns its key. */
    putInstance: (id: string, rowJson: string): number => (putInstance.get(id, rowJson) as { key: number }).key,
    instanceKey: (id: string): number | undefined => (instanceKey.get(id) as { key: number } | undefined)?.key,
    instanceRow: (id: string) => instanceRow.get(id) as { key: number; row: string } | undefined,
    instanceIds: (): string[] => instanceIds.all().map((found) => (found as { id: string }).id),
    deleteInstance: (key: number): void => {
      deleteInstanceTasks.run(key)
      deleteInstance.run(key)
    },
    deleteRun: (key: number, run: number): void => void deleteRun.run(key, run),
    /** Inserts rows in chunks of INSERT_CHUNK, the rest one by one; call inside a transaction. */
    insertTasks: (key: number, rows: ReadonlyArray<TaskRow>): void => {
      let next = 0
      if (rows.length >= INSERT_CHUNK) {
        const params: SQLInputValue[] = new Array(INSERT_CHUNK * PARAMS_PER_ROW)
        for (; next + INSERT_CHUNK <= rows.length; next += INSERT_CHUNK) {
          let p = 0
          for (let i = next; i < next + INSERT_CHUNK; i++) p = writeRow(params, p, key, rows[i] as TaskRow)
          insertChunk.run(...params)
        }
      }
      const params: SQLInputValue[] = new Array(PARAMS_PER_ROW)
      for (; next < rows.length; next++) {
        writeRow(params, 0, key, rows[next] as TaskRow)
        insertOne.run(...params)
      }
    },
    /** Rows changed: 1 if the task (key, seq) holds the update's id, else 0. */
    updateTask: (key: number, update: TaskUpdate): number =>
      Number(
        updateTask.run(
          update.status,
          update.worker,
          update.attempt,
          update.failures,
          update.redeliveries,
          update.childCount,
          update.dueAt,
          update.result,
          update.resultCut ? 1 : 0,
          update.lastError,
          key,
          update.seq,
          update.id
        ).changes
      ),
    taskById: (key: number, id: string): unknown => taskById.get(key, id),
    results: (key: number, run: number, afterSeq: number, limit: number): unknown[] =>
      results.all(key, run, afterSeq, limit),
    liveTasks: (key: number): unknown[] => liveTasks.all(key),
    terminalCounts: (key: number) =>
      terminalCounts.all(key) as Array<{ name: string; worker: string | null; status: number; count: number }>
  }
}

export type Statements = ReturnType<typeof prepareStatements>
