import { StoreError } from "@taskfold/core"
import { checkChanges, type SqlDriver, type SqlRow, type SqlStatement, sqliteStoreError } from "@taskfold/core/adapter"
import { Effect } from "effect"
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite"

export type SqliteDriver = SqlDriver & {
  /** Closes the database; later calls fail with StoreError "unavailable". */
  readonly close: () => void
}

const NO_ROWS: ReadonlyArray<SqlRow> = []

/**
 * WAL lets readers (a status query, a second connection) run beside the tracker's writes, and makes a commit
 * one append to the log. synchronous=NORMAL syncs the log at checkpoints, not at every commit: a committed
 * batch survives a crash of the process (R-REC-1) and the file never corrupts, but a power cut may lose the
 * last few commits, which then resume as if the tracker had crashed a moment earlier (at-least-once, R-REC-2).
 * busy_timeout: a second connection holding the write lock makes BEGIN IMMEDIATE wait, not fail.
 */
const open = (path: string): DatabaseSync => {
  const db = new DatabaseSync(path)
  try {
    // An in-memory database has no log file: it stays in its "memory" journal mode.
    if (path !== ":memory:") db.exec("PRAGMA journal_mode = WAL")
    db.exec("PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000")
    // Files of taskfold before the shared SQL schema kept their version here, and other tables.
    if ((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version !== 0) {
      throw new StoreError({ reason: "corrupt", message: `${path} was written by an older taskfold` })
    }
    return db
  } catch (error) {
    db.close()
    throw error
  }
}

/** A SqlDriver on one node:sqlite connection: each statement prepared once, writes under BEGIN IMMEDIATE. */
export const openSqliteDriver = (path: string | ":memory:"): SqliteDriver => {
  let db: DatabaseSync
  try {
    db = open(path)
  } catch (error) {
    throw sqliteStoreError(error, `opening ${path}`)
  }
  const prepared = new Map<string, { readonly statement: StatementSync; readonly reads: boolean }>()
  const run = (s: SqlStatement): ReadonlyArray<SqlRow> => {
    let found = prepared.get(s.sql)
    if (found === undefined) {
      const statement = db.prepare(s.sql)
      prepared.set(s.sql, (found = { statement, reads: statement.columns().length > 0 }))
    }
    const params = s.params as SQLInputValue[]
    if (found.reads) return found.statement.all(...params) as ReadonlyArray<SqlRow>
    const { changes } = found.statement.run(...params)
    checkChanges(s, () => Number(changes))
    return NO_ROWS
  }
  const inTransaction = (begin: string, statements: Iterable<SqlStatement>) => {
    run({ sql: begin, params: [] })
    try {
      const results = Array.from(statements, run)
      run({ sql: "COMMIT", params: [] })
      return results
    } catch (error) {
      // SQLite rolls some failures (a full disk, an I/O error) back by itself; then there is nothing to undo.
      if (db.isOpen && db.isTransaction) db.exec("ROLLBACK")
      throw error
    }
  }
  const attempt = <A>(body: () => A) => Effect.try({ try: body, catch: (error) => sqliteStoreError(error, path) })
  return {
    maxParams: 32_766,
    execute: (statement) => attempt(() => run(statement)),
    transaction: (statements, mode = "write") =>
      attempt(() => inTransaction(mode === "read" ? "BEGIN" : "BEGIN IMMEDIATE", statements)),
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
