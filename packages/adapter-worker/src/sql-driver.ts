import {
  checkChanges,
  makeSqlStore,
  readSqlInstanceRow,
  sqliteStoreError,
  type InstanceRow
} from "@taskfold/core/adapter"
import type { SqlDriver, SqlRow, SqlStatement, SqlValue, TaskStoreShape } from "@taskfold/core/adapter"
import { Effect } from "effect"

/** What the driver needs of a Durable Object's storage: its SQL database and synchronous transactions. */
export interface SqlStorageLike {
  readonly sql: SqlStorage
  readonly transactionSync: <T>(closure: () => T) => T
}

/** Durable Object SQL takes at most this many bound parameters in one statement. */
export const MAX_BOUND_PARAMETERS = 100

// Durable Object SQL binds and returns blobs as ArrayBuffers; the driver contract speaks Uint8Array.
const bind = (value: SqlValue): SqlStorageValue =>
  value instanceof Uint8Array
    ? (value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) as ArrayBuffer)
    : (value as SqlStorageValue)
const toRow = (row: Record<string, unknown>): SqlRow => {
  for (const column in row) if (row[column] instanceof ArrayBuffer) row[column] = new Uint8Array(row[column])
  return row as SqlRow
}

/** A SqlDriver on Durable Object SQL: a transaction is one `transactionSync`, rolled back if anything throws. */
export const durableObjectDriver = (storage: SqlStorageLike): SqlDriver => {
  const { sql } = storage
  const run = (statement: SqlStatement): ReadonlyArray<SqlRow> => {
    const rows = sql
      .exec(statement.sql, ...statement.params.map(bind))
      .toArray()
      .map(toRow)
    checkChanges(statement, () => sql.exec<{ n: number }>("SELECT changes() AS n").one().n)
    return rows
  }
  const attempt = <A>(body: () => A) =>
    Effect.try({ try: body, catch: (error) => sqliteStoreError(error, "Durable Object SQL") })
  return {
    maxParams: MAX_BOUND_PARAMETERS,
    execute: (statement) => attempt(() => run(statement)),
    transaction: (statements) => attempt(() => storage.transactionSync(() => Array.from(statements, run)))
  }
}

// Durable Object SQL is synchronous: these Effects are done when runSync returns; a failure throws its StoreError.
const now = Effect.runSync

/** Core's SQL TaskStore in a Durable Object's storage (R-REC-1). */
export const makeDurableObjectStore = (storage: SqlStorageLike): TaskStoreShape =>
  now(makeSqlStore(durableObjectDriver(storage)))

// For calls given `sql` alone: single statements, and a migration that creates only what is missing.
const onSql = (sql: SqlStorage) => durableObjectDriver({ sql, transactionSync: (closure) => closure() })

/** The stored row of an instance without its tasks: what a restarted object needs to know before it resumes. */
export const readInstanceRow = (sql: SqlStorage, instanceId: string): InstanceRow | undefined =>
  now(readSqlInstanceRow(onSql(sql), instanceId))
