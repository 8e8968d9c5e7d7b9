import { StoreError } from "@taskfold/core"
import type {
  InstanceRow,
  StoredInstance,
  StoredResult,
  TaskRow,
  TaskStoreShape,
  TaskUpdate,
  WriteBatch
} from "@taskfold/core/adapter"
import { Effect } from "effect"

/** What the store needs of a Durable Object's storage: its SQL database and synchronous transactions. */
export interface SqlStorageLike {
  readonly sql: SqlStorage
  readonly transactionSync: <T>(closure: () => T) => T
}

/** Durable Object SQL takes at most this many bound parameters in one statement. */
export const MAX_BOUND_PARAMETERS = 100

/**
 * Tables, as in the Node adapter: an instance gets a small integer key; tasks are keyed by (instance, seq),
 * so an instance's rows lie in seq order (reduce's order and the order live tasks load in). The unique
 * (instance, id) index finds a task by id and refuses a duplicate; the partial index on terminal tasks makes
 * a page of results a range scan. `body ANY` keeps a body's type: TEXT is JSON, a BLOB is bytes.
 */
const DDL = [
  `CREATE TABLE IF NOT EXISTS taskfold_instances (
    key INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    row TEXT NOT NULL
  ) STRICT`,
  `CREATE TABLE IF NOT EXISTS taskfold_tasks (
    instance INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    run INTEGER NOT NULL,
    name TEXT NOT NULL,
    kind INTEGER NOT NULL,
    body ANY NOT NULL,
    status INTEGER NOT NULL,
    worker TEXT,
    attempt INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    redeliveries INTEGER NOT NULL,
    child_count INTEGER NOT NULL,
    due_at REAL,
    result TEXT,
    result_cut INTEGER NOT NULL,
    last_error TEXT,
    PRIMARY KEY (instance, seq)
  ) WITHOUT ROWID, STRICT`,
  `CREATE UNIQUE INDEX IF NOT EXISTS taskfold_tasks_by_id ON taskfold_tasks (instance, id)`,
  `CREATE INDEX IF NOT EXISTS taskfold_tasks_results ON taskfold_tasks (instance, run, seq) WHERE status >= 5`
]

const TASK_COLUMNS = `id, seq, run, name, kind, body, status, worker, attempt, failures, redeliveries,
  child_count, due_at, result, result_cut, last_error`

/** Columns bound per inserted task (the instance key is written into the statement). */
const INSERT_WIDTH = 16
/** Columns bound per updated task. */
const UPDATE_WIDTH = 12
const INSERT_ROWS = Math.floor(MAX_BOUND_PARAMETERS / INSERT_WIDTH)
const UPDATE_ROWS = Math.floor(MAX_BOUND_PARAMETERS / UPDATE_WIDTH)
/** Ids per IN list, leaving room for the other parameters of the statement. */
const ID_CHUNK = MAX_BOUND_PARAMETERS - 2

type Row = Record<string, SqlStorageValue>

const placeholders = (rows: number, width: number): string => {
  const one = `(${new Array(width).fill("?").join(",")})`
  return new Array(rows).fill(one).join(",")
}

/** A failure inside a transaction, carried out of it as a thrown value. */
class Abort {
  readonly error: StoreError
  constructor(error: StoreError) {
    this.error = error
  }
}

const toStoreError = (cause: unknown): StoreError => {
  if (cause instanceof Abort) return cause.error
  if (cause instanceof StoreError) return cause
  const message = cause instanceof Error ? cause.message : String(cause)
  return new StoreError({ reason: /UNIQUE constraint/i.test(message) ? "conflict" : "unavailable", message })
}

const bindBody = (body: TaskRow["body"]): SqlStorageValue =>
  typeof body === "string"
    ? body
    : (body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer)

const readBody = (value: SqlStorageValue): TaskRow["body"] =>
  typeof value === "string" ? value : new Uint8Array(value as ArrayBuffer)

const toTaskRow = (c: Row): TaskRow => ({
  id: c["id"] as string,
  seq: c["seq"] as number,
  run: c["run"] as number,
  name: c["name"] as string,
  kind: c["kind"] as TaskRow["kind"],
  body: readBody(c["body"] as SqlStorageValue),
  status: c["status"] as TaskRow["status"],
  worker: c["worker"] as string | null,
  attempt: c["attempt"] as number,
  failures: c["failures"] as number,
  redeliveries: c["redeliveries"] as number,
  childCount: c["child_count"] as number,
  dueAt: c["due_at"] as number | null,
  result: c["result"] as string | null,
  resultCut: c["result_cut"] !== 0,
  lastError: c["last_error"] as string | null
})

const toStoredResult = (c: Row): StoredResult => ({
  id: c["id"] as string,
  seq: c["seq"] as number,
  name: c["name"] as string,
  status: c["status"] as number,
  result: c["result"] as string | null,
  resultCut: c["result_cut"] !== 0,
  lastError: c["last_error"] as string | null
})

/**
 * A TaskStore on a Durable Object's SQLite (R-REC-1). Every write batch is one `transactionSync`: a batch
 * that fails anywhere is rolled back whole. Inserts go several rows per statement and updates several rows
 * per `UPDATE … FROM (VALUES …)`, each statement within the 100 bound parameters Durable Object SQL allows.
 */
export const makeSqlStore = (storage: SqlStorageLike): TaskStoreShape => {
  const sql = storage.sql
  for (const statement of DDL) sql.exec(statement)

  const exec = (query: string, ...bindings: SqlStorageValue[]): Row[] => sql.exec<Row>(query, ...bindings).toArray()

  const keyOf = (instanceId: string): number | undefined =>
    exec("SELECT key FROM taskfold_instances WHERE id = ?", instanceId)[0]?.["key"] as number | undefined

  const insertSql = (key: number, rows: number) =>
    `INSERT INTO taskfold_tasks (instance, ${TASK_COLUMNS}) VALUES ${placeholders(rows, INSERT_WIDTH).replaceAll("(?,", `(${key},?,`)}`
  const updateSql = (key: number, rows: number) =>
    `UPDATE taskfold_tasks SET status = v.column3, worker = v.column4, attempt = v.column5, failures = v.column6,
       redeliveries = v.column7, child_count = v.column8, due_at = v.column9, result = v.column10,
       result_cut = v.column11, last_error = v.column12
     FROM (VALUES ${placeholders(rows, UPDATE_WIDTH)}) AS v
     WHERE taskfold_tasks.instance = ${key} AND taskfold_tasks.seq = v.column1 AND taskfold_tasks.id = v.column2
     RETURNING taskfold_tasks.seq`

  const insertTasks = (key: number, rows: ReadonlyArray<TaskRow>): void => {
    for (let from = 0; from < rows.length; from += INSERT_ROWS) {
      const chunk = rows.slice(from, from + INSERT_ROWS)
      const values: SqlStorageValue[] = new Array(chunk.length * INSERT_WIDTH)
      let i = 0
      for (const row of chunk) {
        values[i++] = row.id
        values[i++] = row.seq
        values[i++] = row.run
        values[i++] = row.name
        values[i++] = row.kind
        values[i++] = bindBody(row.body)
        values[i++] = row.status
        values[i++] = row.worker
        values[i++] = row.attempt
        values[i++] = row.failures
        values[i++] = row.redeliveries
        values[i++] = row.childCount
        values[i++] = row.dueAt
        values[i++] = row.result
        values[i++] = row.resultCut ? 1 : 0
        values[i++] = row.lastError
      }
      exec(insertSql(key, chunk.length), ...values)
    }
  }

  const updateTasks = (instanceId: string, key: number, updates: ReadonlyArray<TaskUpdate>): void => {
    for (let from = 0; from < updates.length; from += UPDATE_ROWS) {
      const chunk = updates.slice(from, from + UPDATE_ROWS)
      const values: SqlStorageValue[] = new Array(chunk.length * UPDATE_WIDTH)
      let i = 0
      for (const update of chunk) {
        values[i++] = update.seq
        values[i++] = update.id
        values[i++] = update.status
        values[i++] = update.worker
        values[i++] = update.attempt
        values[i++] = update.failures
        values[i++] = update.redeliveries
        values[i++] = update.childCount
        values[i++] = update.dueAt
        values[i++] = update.result
        values[i++] = update.resultCut ? 1 : 0
        values[i++] = update.lastError
      }
      const changed = exec(updateSql(key, chunk.length), ...values)
      if (changed.length === chunk.length) continue
      const found = new Set(changed.map((row) => row["seq"] as number))
      const missing = chunk.find((update) => !found.has(update.seq)) ?? chunk[0]!
      throw new Abort(
        new StoreError({
          reason: "not-found",
          message: `task ${missing.id} (seq ${missing.seq}) of ${instanceId} is not stored`
        })
      )
    }
  }

  const deleteRuns = (key: number, runs: ReadonlyArray<number>): void => {
    for (let from = 0; from < runs.length; from += ID_CHUNK) {
      const chunk = runs.slice(from, from + ID_CHUNK)
      exec(
        `DELETE FROM taskfold_tasks WHERE instance = ${key} AND run IN (${chunk.map(() => "?").join(",")})`,
        ...chunk
      )
    }
  }

  const applySync = (batch: WriteBatch): void => {
    const id = batch.instance.id
    if (batch.deleteInstance) {
      const key = keyOf(id)
      if (key === undefined) return
      exec(`DELETE FROM taskfold_tasks WHERE instance = ${key}`)
      exec("DELETE FROM taskfold_instances WHERE key = ?", key)
      return
    }
    const key = exec(
      `INSERT INTO taskfold_instances (id, row) VALUES (?, ?)
       ON CONFLICT (id) DO UPDATE SET row = excluded.row RETURNING key`,
      id,
      JSON.stringify(batch.instance)
    )[0]?.["key"] as number
    insertTasks(key, batch.inserts)
    updateTasks(id, key, batch.updates)
    if (batch.deleteRuns.length > 0) deleteRuns(key, batch.deleteRuns)
  }

  /** Runs a read; a failure is a StoreError. */
  const read = <A>(f: () => A): Effect.Effect<A, StoreError> =>
    Effect.suspend(() => {
      try {
        return Effect.succeed(f())
      } catch (cause) {
        return Effect.fail(toStoreError(cause))
      }
    })

  return {
    apply: (batch) => read(() => storage.transactionSync(() => applySync(batch))),
    readTasks: (instanceId, ids) =>
      read(() => {
        const key = keyOf(instanceId)
        if (key === undefined || ids.length === 0) return []
        const rows: TaskRow[] = []
        for (let from = 0; from < ids.length; from += ID_CHUNK) {
          const chunk = ids.slice(from, from + ID_CHUNK)
          const found = exec(
            `SELECT ${TASK_COLUMNS} FROM taskfold_tasks WHERE instance = ${key} AND id IN (${chunk.map(() => "?").join(",")})`,
            ...chunk
          )
          for (const row of found) rows.push(toTaskRow(row))
        }
        return rows
      }),
    readResults: (instanceId, run, afterSeq, limit) =>
      read(() => {
        const key = keyOf(instanceId)
        if (key === undefined) return []
        return exec(
          `SELECT id, seq, name, status, result, result_cut, last_error FROM taskfold_tasks
           WHERE instance = ${key} AND run = ? AND seq > ? AND status >= 5 ORDER BY seq LIMIT ?`,
          run,
          afterSeq,
          limit
        ).map(toStoredResult)
      }),
    load: (instanceId) =>
      read((): StoredInstance | undefined => {
        const found = exec("SELECT key, row FROM taskfold_instances WHERE id = ?", instanceId)[0]
        if (found === undefined) return undefined
        const key = found["key"] as number
        let instance: InstanceRow
        try {
          instance = JSON.parse(found["row"] as string) as InstanceRow
        } catch (cause) {
          throw new Abort(new StoreError({ reason: "corrupt", message: `instance ${instanceId}: ${String(cause)}` }))
        }
        const live = exec(
          `SELECT ${TASK_COLUMNS} FROM taskfold_tasks WHERE instance = ${key} AND status < 5 ORDER BY seq`
        ).map(toTaskRow)
        const terminal = exec(
          `SELECT name, worker, status, COUNT(*) AS count FROM taskfold_tasks
           WHERE instance = ${key} AND status >= 5 GROUP BY name, worker, status`
        ).map((row) => ({
          name: row["name"] as string,
          worker: row["worker"] as string | null,
          status: row["status"] as number,
          count: row["count"] as number
        }))
        return { instance, live, terminal }
      }),
    listInstances: () =>
      read(() => exec("SELECT id FROM taskfold_instances ORDER BY key").map((row) => row["id"] as string))
  }
}

/** The stored row of an instance without its tasks: what a restarted object needs to know before it resumes. */
export const readInstanceRow = (sql: SqlStorage, instanceId: string): InstanceRow | undefined => {
  const found = sql.exec<{ row: string }>("SELECT row FROM taskfold_instances WHERE id = ?", instanceId).toArray()[0]
  return found === undefined ? undefined : (JSON.parse(found.row) as InstanceRow)
}

/**
 * Outcomes outlive their instance: once the owner has one (R-FIN-6) the tracker deletes the instance's tasks,
 * and the status endpoint answers from here.
 */
export interface OutcomeRecord {
  readonly instanceId: string
  readonly job: string
  readonly outcome: import("@taskfold/core").Outcome
  readonly progress: import("@taskfold/core").Progress | null
}

export const makeOutcomeTable = (sql: SqlStorage) => {
  sql.exec(`CREATE TABLE IF NOT EXISTS taskfold_outcomes (id TEXT PRIMARY KEY, record TEXT NOT NULL) STRICT`)
  return {
    write: (record: OutcomeRecord): void => {
      sql.exec(
        "INSERT INTO taskfold_outcomes (id, record) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET record = excluded.record",
        record.instanceId,
        JSON.stringify(record)
      )
    },
    read: (instanceId: string): OutcomeRecord | undefined => {
      const found = sql
        .exec<{ record: string }>("SELECT record FROM taskfold_outcomes WHERE id = ?", instanceId)
        .toArray()[0]
      return found === undefined ? undefined : (JSON.parse(found.record) as OutcomeRecord)
    }
  }
}

/** Workers holding live tasks (Dispatched, Received or Running) of an instance. */
export const busyWorkers = (sql: SqlStorage, instanceId: string): Set<string> =>
  new Set(
    sql
      .exec<{ worker: string }>(
        `SELECT DISTINCT t.worker AS worker FROM taskfold_tasks t JOIN taskfold_instances i ON t.instance = i.key
         WHERE i.id = ? AND t.status BETWEEN 2 AND 4 AND t.worker IS NOT NULL`,
        instanceId
      )
      .toArray()
      .map((row) => row.worker)
  )
