import type { Effect } from "effect"
import type { StoreError } from "../model/errors.ts"

/** A value a statement binds or a row holds. Blobs are Uint8Array on every driver. */
export type SqlValue = string | number | bigint | null | Uint8Array

/** A result row, by column name (or alias). */
export interface SqlRow {
  readonly [column: string]: SqlValue
}

export interface SqlStatement {
  readonly sql: string
  readonly params: ReadonlyArray<SqlValue>
  /**
   * The rows this write must change. Any other count fails the transaction with `mismatch()` and rolls it
   * back: how a batch learns that an update named a task the store does not hold, without a RETURNING
   * clause (measured on node:sqlite: RETURNING halves update throughput).
   */
  readonly expect?: { readonly changes: number; readonly mismatch: () => StoreError }
}

/**
 * What the SQL store needs of a database, as small as Effect SQL's `Connection`. Calls are Effects, so a
 * synchronous engine (node:sqlite, Durable Object SQL) and an asynchronous one fit the same shape; every
 * failure is a StoreError with a reason. The SQL is SQLite's dialect.
 */
export interface SqlDriver {
  /** The most bound parameters one statement may carry (Durable Object SQL: 100). */
  readonly maxParams: number
  /** Runs one statement on its own; its rows (none for a write). */
  readonly execute: (statement: SqlStatement) => Effect.Effect<ReadonlyArray<SqlRow>, StoreError>
  /**
   * Runs the statements in order in one transaction: all of them commit, or on any failure none does.
   * The statements are taken one at a time, so a caller may build them while they run. "read" asks for
   * a consistent snapshot only, where the engine tells the two apart (node:sqlite takes no write lock).
   */
  readonly transaction: (
    statements: Iterable<SqlStatement>,
    mode?: "read" | "write"
  ) => Effect.Effect<ReadonlyArray<ReadonlyArray<SqlRow>>, StoreError>
}

/** For drivers, inside their transaction: throws the statement's mismatch if it changed another number of rows. */
export const checkChanges = (statement: SqlStatement, changes: () => number): void => {
  const expect = statement.expect
  if (expect !== undefined && changes() !== expect.changes) throw expect.mismatch()
}
