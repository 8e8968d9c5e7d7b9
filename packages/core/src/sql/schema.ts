import { Effect } from "effect"
import { StoreError } from "../model/errors.ts"
import { TaskStatus } from "../model/status.ts"
import type { SqlDriver } from "./driver.ts"
import { TASK_COLUMNS } from "./rows.ts"

/** A terminal task, spelled the same in the partial index and in the queries, so the planner may use the index. */
export const TERMINAL = `status >= ${TaskStatus.Failed}`
export const LIVE = `status < ${TaskStatus.Failed}`

/**
 * The tables, version 1. An instance gets a small integer `key` (its rowid) when first stored; tasks carry
 * that key rather than the instance's id, a long text, in their table and both indexes: measured on
 * node:sqlite, inserts and updates about 40 % faster. Tasks are keyed by (instance, seq) in a WITHOUT ROWID
 * table, so the rows of an instance lie in seq order: the order `load` returns live tasks in and reduce reads
 * results in. The unique (instance, id) index finds a task by id and refuses a second task with that id.
 * The partial index holds terminal tasks only, for pages of results while they are few among live ones;
 * once nearly all are terminal (reduce's case) the primary key serves better, and the planner picks it.
 * STRICT makes SQLite refuse a value of the wrong type instead of storing it. Outcomes outlive their
 * instance's tasks (R-FIN-6): a record per instance, newest rowid last (REPLACE moves a record to the end).
 */
const VERSION_1 = [
  `CREATE TABLE IF NOT EXISTS taskfold_instances (
    key INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    row TEXT NOT NULL
  ) STRICT`,
  `CREATE TABLE IF NOT EXISTS taskfold_tasks (
    instance INTEGER NOT NULL,
    ${TASK_COLUMNS.map(([column, , type]) => `${column} ${type}`).join(",\n    ")},
    PRIMARY KEY (instance, seq)
  ) WITHOUT ROWID, STRICT`,
  "CREATE UNIQUE INDEX IF NOT EXISTS taskfold_tasks_by_id ON taskfold_tasks (instance, id)",
  `CREATE INDEX IF NOT EXISTS taskfold_tasks_results ON taskfold_tasks (instance, run, seq) WHERE ${TERMINAL}`,
  "CREATE TABLE IF NOT EXISTS taskfold_outcomes (id TEXT PRIMARY KEY, record TEXT NOT NULL) STRICT"
]

/**
 * Migrations by version: entry n brings a database from version n to n + 1. Version 1 only creates what is
 * missing, so a Durable Object written before versioning (the same tables, no version row) reaches it as is.
 */
const MIGRATIONS: ReadonlyArray<ReadonlyArray<string>> = [VERSION_1]
export const SCHEMA_VERSION = MIGRATIONS.length

/** One row, holding the version the tables are at. */
const VERSION_TABLE =
  "CREATE TABLE IF NOT EXISTS taskfold_schema (id INTEGER PRIMARY KEY CHECK (id = 0), version INTEGER NOT NULL) STRICT"

/**
 * Brings the tables to SCHEMA_VERSION in one transaction. A database written by a newer version is refused,
 * not misread.
 */
export const migrateSqlSchema = (driver: SqlDriver): Effect.Effect<void, StoreError> =>
  Effect.gen(function* () {
    yield* driver.execute({ sql: VERSION_TABLE, params: [] })
    const [found] = yield* driver.execute({ sql: "SELECT version FROM taskfold_schema", params: [] })
    const version = (found?.["version"] as number | undefined) ?? 0
    if (version === SCHEMA_VERSION) return
    if (version > SCHEMA_VERSION) {
      return yield* new StoreError({
        reason: "corrupt",
        message: `the database has schema version ${version}; this taskfold reads version ${SCHEMA_VERSION}`
      })
    }
    const steps = MIGRATIONS.slice(version).flatMap((statements) => statements.map((sql) => ({ sql, params: [] })))
    yield* driver.transaction([
      ...steps,
      {
        sql: `INSERT INTO taskfold_schema (id, version) VALUES (0, ?)
          ON CONFLICT (id) DO UPDATE SET version = excluded.version`,
        params: [SCHEMA_VERSION]
      }
    ])
  })
