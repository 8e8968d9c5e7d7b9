import { StoreError, type Outcome, type Progress } from "@taskfold/core"
import type { OutcomeLogShape, OutcomeRecord } from "@taskfold/core/adapter"
import { Effect } from "effect"
import { DatabaseSync } from "node:sqlite"

interface Row {
  readonly instance_id: string
  readonly job: string
  readonly outcome: string
  readonly progress: string
}

const recordOf = (row: Row): OutcomeRecord => ({
  instanceId: row.instance_id,
  job: row.job,
  outcome: JSON.parse(row.outcome) as Outcome,
  progress: JSON.parse(row.progress) as Progress
})

/**
 * Outcomes in a table of their own, in the tracker server's database file (beside the store's tables),
 * so `status` answers for finished instances after a restart too.
 */
export const sqliteOutcomeLog = (path: string): OutcomeLogShape & { readonly close: () => void } => {
  const db = new DatabaseSync(path)
  db.exec("PRAGMA busy_timeout = 5000")
  db.exec(
    `CREATE TABLE IF NOT EXISTS server_outcomes (
       instance_id TEXT PRIMARY KEY,
       job TEXT NOT NULL,
       outcome TEXT NOT NULL,
       progress TEXT NOT NULL
     ) STRICT`
  )
  const put = db.prepare(
    "INSERT OR REPLACE INTO server_outcomes (instance_id, job, outcome, progress) VALUES (?, ?, ?, ?)"
  )
  const get = db.prepare("SELECT instance_id, job, outcome, progress FROM server_outcomes WHERE instance_id = ?")
  const list = db.prepare("SELECT instance_id, job, outcome, progress FROM server_outcomes ORDER BY rowid DESC LIMIT ?")
  const attempt = <A>(what: string, run: () => A) =>
    Effect.try({
      try: run,
      catch: (error) => new StoreError({ reason: "unavailable", message: `${what} in ${path}: ${String(error)}` })
    })
  return {
    put: (record) =>
      attempt("cannot keep an outcome", () => {
        put.run(record.instanceId, record.job, JSON.stringify(record.outcome), JSON.stringify(record.progress))
      }),
    get: (instanceId) =>
      attempt("cannot read an outcome", () => {
        const row = get.get(instanceId) as Row | undefined
        return row === undefined ? undefined : recordOf(row)
      }),
    list: (limit) => attempt("cannot list outcomes", () => (list.all(limit) as unknown as Row[]).map(recordOf)),
    close: () => {
      if (db.isOpen) db.close()
    }
  }
}
