import { StoreError } from "../model/errors.ts"

// SQLite's primary result codes (the low byte of an extended code).
const SQLITE_CORRUPT = 11
const SQLITE_CONSTRAINT = 19
const SQLITE_NOTADB = 26

/**
 * Maps anything an SQLite engine threw to a StoreError with a reason: a broken constraint is a conflict (a
 * task stored twice), a damaged file is corrupt, anything else (a closed database, a busy lock, a full
 * disk) leaves the store unavailable. node:sqlite gives the code as `errcode`; Durable Object SQL only in
 * the message. StoreErrors (a failed check, a refused schema) pass through.
 */
export const sqliteStoreError = (error: unknown, doing: string): StoreError => {
  if (error instanceof StoreError) return error
  const text = error instanceof Error ? error.message : String(error)
  const message = `${doing}: ${text}`
  const errcode = (error as { readonly errcode?: unknown } | null)?.errcode
  const primary = typeof errcode === "number" ? errcode & 0xff : undefined
  if (primary === SQLITE_CONSTRAINT || /constraint failed|SQLITE_CONSTRAINT/i.test(text)) {
    return new StoreError({ reason: "conflict", message })
  }
  if (
    primary === SQLITE_CORRUPT ||
    primary === SQLITE_NOTADB ||
    /malformed|not a database|SQLITE_(CORRUPT|NOTADB)/i.test(text)
  ) {
    return new StoreError({ reason: "corrupt", message })
  }
  return new StoreError({ reason: "unavailable", message })
}
