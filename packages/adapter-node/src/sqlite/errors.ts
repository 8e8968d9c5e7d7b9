import { StoreError } from "@taskfold/core"

// SQLite's primary result codes (the low byte of an extended code).
const SQLITE_CORRUPT = 11
const SQLITE_CONSTRAINT = 19
const SQLITE_NOTADB = 26

/** What node:sqlite attaches to the errors it throws for SQLite failures. */
interface SqliteFailure {
  readonly code?: unknown
  readonly errcode?: unknown
}

/**
 * Maps anything thrown while talking to SQLite to a StoreError with a reason: a broken constraint is a
 * conflict (a task stored twice), a damaged file is corrupt, anything else (a closed database, a busy
 * lock, a full disk) leaves the store unavailable. StoreErrors thrown by the store itself pass through.
 */
export const toStoreError = (error: unknown, doing: string): StoreError => {
  if (error instanceof StoreError) return error
  const message = `${doing}: ${error instanceof Error ? error.message : String(error)}`
  const errcode = (error as SqliteFailure | null)?.errcode
  const primary = typeof errcode === "number" ? errcode & 0xff : undefined
  if (primary === SQLITE_CONSTRAINT) return new StoreError({ reason: "conflict", message })
  if (primary === SQLITE_CORRUPT || primary === SQLITE_NOTADB) return new StoreError({ reason: "corrupt", message })
  return new StoreError({ reason: "unavailable", message })
}
