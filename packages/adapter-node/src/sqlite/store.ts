import { StoreError } from "@taskfold/core"
import {
  InstanceRow,
  TaskStore,
  type StoredInstance,
  type StoredResult,
  type TaskRow,
  type TaskStoreShape,
  type WriteBatch
} from "@taskfold/core/adapter"
import { Effect, Layer, Schema } from "effect"
import { DatabaseSync } from "node:sqlite"
import { toStoreError } from "./errors.ts"
import { toStoredResult, toTaskRow } from "./rows.ts"
import { prepareDatabase } from "./schema.ts"
import { prepareStatements, type Statements } from "./statements.ts"

export type SqliteStore = TaskStoreShape & {
  /** Closes the database; later calls fail with StoreError "unavailable". */
  readonly close: () => void
}

const decodeInstance = Schema.decodeUnknownSync(InstanceRow)

/** Runs `body` in one transaction: COMMIT if it returns, ROLLBACK if anything throws, so a failed call changes nothing. */
const inTransaction = <A>(db: DatabaseSync, sql: Statements, begin: () => void, body: () => A): A => {
  begin()
  try {
    const value = body()
    sql.commit()
    return value
  } catch (error) {
    // SQLite rolls some failures (a full disk, an I/O error) back by itself; then there is nothing left to undo.
    if (db.isOpen && db.isTransaction) sql.rollback()
    throw error
  }
}

/** Writes one batch; throws on the first bad row (the caller's transaction undoes the rest). */
const applyBatch = (sql: Statements, batch: WriteBatch): void => {
  const id = batch.instance.id
  if (batch.deleteInstance) {
    const key = sql.instanceKey(id)
    if (key !== undefined) sql.deleteInstance(key)
    return
  }
  const key = sql.putInstance(id, JSON.stringify(batch.instance))
  sql.insertTasks(key, batch.inserts)
  for (const update of batch.updates) {
    if (sql.updateTask(key, update) !== 1) {
      throw new StoreError({
        reason: "not-found",
        message: `task ${update.id} (seq ${update.seq}) of ${id} is not stored`
      })
    }
  }
  for (const run of batch.deleteRuns) sql.deleteRun(key, run)
}

const loadInstance = (sql: Statements, instanceId: string): StoredInstance | undefined => {
  const found = sql.instanceRow(instanceId)
  if (found === undefined) return undefined
  let instance: InstanceRow
  try {
    instance = decodeInstance(JSON.parse(found.row))
  } catch (error) {
    throw new StoreError({
      reason: "corrupt",
      message: `the stored row of instance ${instanceId} does not decode: ${String(error)}`
    })
  }
  const live = sql.liveTasks(found.key).map(toTaskRow)
  const terminal = sql
    .terminalCounts(found.key)
    .map((count) => ({ name: count.name, worker: count.worker, status: count.status, count: count.count }))
  return { instance, live, terminal }
}

/** Opens the file, sets it up and prepares the statements; on failure closes it again and throws a StoreError. */
const openDatabase = (path: string): { db: DatabaseSync; sql: Statements } => {
  let db: DatabaseSync | undefined
  try {
    db = new DatabaseSync(path)
    prepareDatabase(db, path === ":memory:")
    return { db, sql: prepareStatements(db) }
  } catch (error) {
    if (db?.isOpen) db.close()
    throw toStoreError(error, `opening ${path}`)
  }
}

/**
 * A durable TaskStore in one SQLite file (or ":memory:"), on node:sqlite. Every call is one
 * transaction; `apply` takes the write lock at once (BEGIN IMMEDIATE) and commits the whole batch or,
 * on any error, rolls all of it back. Opening a database created by an older run resumes from it:
 * `listInstances` gives the instances to resume (R-REC-1).
 */
export const openSqliteStore = (path: string | ":memory:"): SqliteStore => {
  const { db, sql } = openDatabase(path)

  /** A synchronous database call as an Effect failing with a StoreError. */
  const attempt = <A>(doing: string, body: () => A): Effect.Effect<A, StoreError> =>
    Effect.try({ try: body, catch: (error) => toStoreError(error, doing) })

  return {
    apply: (batch) =>
      attempt(`applying a batch to ${batch.instance.id}`, () =>
        inTransaction(db, sql, sql.begin, () => applyBatch(sql, batch))
      ),
    readTasks: (instanceId, ids) =>
      attempt(`reading tasks of ${instanceId}`, () => {
        const key = sql.instanceKey(instanceId)
        const rows: TaskRow[] = []
        if (key === undefined) return rows
        for (const id of ids) {
          const found = sql.taskById(key, id)
          if (found !== undefined) rows.push(toTaskRow(found))
        }
        return rows
      }),
    readResults: (instanceId, run, afterSeq, limit) =>
      attempt(`reading results of ${instanceId}`, (): StoredResult[] => {
        const key = sql.instanceKey(instanceId)
        return key === undefined ? [] : sql.results(key, run, afterSeq, limit).map(toStoredResult)
      }),
    // One read transaction, so the row, the live tasks and the counts are one consistent snapshot.
    load: (instanceId) =>
      attempt(`loading ${instanceId}`, () =>
        inTransaction(db, sql, sql.beginRead, () => loadInstance(sql, instanceId))
      ),
    listInstances: () => attempt("listing instances", () => sql.instanceIds()),
    close: () => {
      if (!db.isOpen) return
      // SQLite's advice before closing: refresh the planner's statistics where they are stale; cheap otherwise.
      try {
        db.exec("PRAGMA optimize")
      } catch {}
      db.close()
    }
  }
}

/** The store as a Layer: the database is opened when the layer is built and closed with its scope. */
export const SqliteStoreLayer = (path: string | ":memory:"): Layer.Layer<TaskStore, StoreError> =>
  Layer.effect(
    TaskStore,
    Effect.acquireRelease(
      Effect.try({ try: () => openSqliteStore(path), catch: (error) => toStoreError(error, `opening ${path}`) }),
      (store) => Effect.sync(store.close)
    )
  )
