import { Effect } from "effect"
import { StoreError } from "../model/errors.ts"
import type { OutcomeLogShape, OutcomeRecord, OutcomeRetention } from "../ports/outcome-log.ts"
import type { SqlDriver, SqlRow } from "./driver.ts"
import { migrateSqlSchema } from "./schema.ts"

// REPLACE deletes and inserts: a record put again gets a new rowid, so rowid order is put order.
const PUT = "INSERT OR REPLACE INTO taskfold_outcomes (id, record) VALUES (?, ?)"
const GET = "SELECT record FROM taskfold_outcomes WHERE id = ?"
const LIST = "SELECT record FROM taskfold_outcomes ORDER BY rowid DESC LIMIT ?"
// Past the newest maxRecords, by rowid (put order): a walk of the rowid index, not of the records.
const TRIM =
  "DELETE FROM taskfold_outcomes WHERE rowid <= " +
  "(SELECT rowid FROM taskfold_outcomes ORDER BY rowid DESC LIMIT 1 OFFSET ?)"
const EXPIRE = "DELETE FROM taskfold_outcomes WHERE json_extract(record, '$.outcome.finishedAt') < ?"
/** Expiry reads every record: at most once a minute. */
const EXPIRE_EVERY_MS = 60_000

const recordOf = (row: SqlRow): Effect.Effect<OutcomeRecord, StoreError> =>
  Effect.try({
    try: () => JSON.parse(row["record"] as string) as OutcomeRecord,
    catch: (error) =>
      new StoreError({ reason: "corrupt", message: `a stored outcome does not parse: ${String(error)}` })
  })

/**
 * Outcomes in the SQL store's database, as JSON records, so status answers for finished instances after a
 * restart too (R-FIN-6): the newest `maxRecords` (default 100,000), none older than `maxAgeMs` once a put
 * finds them. Creating it migrates the schema.
 */
export const makeSqlOutcomeLog = (
  driver: SqlDriver,
  retention: OutcomeRetention = {}
): Effect.Effect<OutcomeLogShape, StoreError> => {
  const { maxRecords = 100_000, maxAgeMs } = retention
  let expiredAt = Number.NEGATIVE_INFINITY
  const prune = (record: OutcomeRecord) =>
    Effect.suspend(() => {
      const trim = driver.execute({ sql: TRIM, params: [maxRecords] })
      const now = record.outcome.finishedAt
      if (maxAgeMs === undefined || now - expiredAt < EXPIRE_EVERY_MS) return Effect.asVoid(trim)
      expiredAt = now
      return Effect.asVoid(Effect.andThen(trim, driver.execute({ sql: EXPIRE, params: [now - maxAgeMs] })))
    })
  return Effect.as(migrateSqlSchema(driver), {
    put: (record) =>
      Effect.andThen(driver.execute({ sql: PUT, params: [record.instanceId, JSON.stringify(record)] }), prune(record)),
    get: (instanceId) =>
      Effect.flatMap(driver.execute({ sql: GET, params: [instanceId] }), ([row]) =>
        row === undefined ? Effect.succeed(undefined) : recordOf(row)
      ),
    list: (limit) => Effect.flatMap(driver.execute({ sql: LIST, params: [limit] }), Effect.forEach(recordOf))
  })
}
