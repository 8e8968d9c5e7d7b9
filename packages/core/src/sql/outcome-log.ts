import { Effect } from "effect"
import { StoreError } from "../model/errors.ts"
import type { OutcomeLogShape, OutcomeRecord } from "../ports/outcome-log.ts"
import type { SqlDriver, SqlRow } from "./driver.ts"
import { migrateSqlSchema } from "./schema.ts"

// REPLACE deletes and inserts: a record put again gets a new rowid, so rowid order is put order.
const PUT = "INSERT OR REPLACE INTO taskfold_outcomes (id, record) VALUES (?, ?)"
const GET = "SELECT record FROM taskfold_outcomes WHERE id = ?"
const LIST = "SELECT record FROM taskfold_outcomes ORDER BY rowid DESC LIMIT ?"

const recordOf = (row: SqlRow): Effect.Effect<OutcomeRecord, StoreError> =>
  Effect.try({
    try: () => JSON.parse(row["record"] as string) as OutcomeRecord,
    catch: (error) =>
      new StoreError({ reason: "corrupt", message: `a stored outcome does not parse: ${String(error)}` })
  })

/**
 * Outcomes in the SQL store's database, as JSON records, so status answers for finished instances after a
 * restart too (R-FIN-6). Unlike the memory log it keeps every record. Creating it migrates the schema.
 */
export const makeSqlOutcomeLog = (driver: SqlDriver): Effect.Effect<OutcomeLogShape, StoreError> =>
  Effect.as(migrateSqlSchema(driver), {
    put: (record) => Effect.asVoid(driver.execute({ sql: PUT, params: [record.instanceId, JSON.stringify(record)] })),
    get: (instanceId) =>
      Effect.flatMap(driver.execute({ sql: GET, params: [instanceId] }), ([row]) =>
        row === undefined ? Effect.succeed(undefined) : recordOf(row)
      ),
    list: (limit) => Effect.flatMap(driver.execute({ sql: LIST, params: [limit] }), Effect.forEach(recordOf))
  })
