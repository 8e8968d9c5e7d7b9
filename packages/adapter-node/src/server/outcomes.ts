import type { Outcome, Progress } from "@taskfold/core"
import { DatabaseSync } from "node:sqlite"

/** What the server keeps of an instance once its tracker let go of it: `status` still answers. */
export interface OutcomeRecord {
  readonly instanceId: string
  readonly job: string
  readonly outcome: Outcome
  /** The last progress, with the outcome in it. */
  readonly progress: Progress
}

export interface OutcomeLog {
  /** Stores (or replaces) an instance's record; throws if it cannot. */
  readonly put: (record: OutcomeRecord) => void
  readonly get: (instanceId: string) => OutcomeRecord | undefined
  readonly close: () => void
}

/** Outcomes in memory: the newest `limit` are kept. */
export const memoryOutcomeLog = (limit = 10_000): OutcomeLog => {
  const records = new Map<string, OutcomeRecord>()
  return {
    put: (record) => {
      records.delete(record.instanceId)
      records.set(record.instanceId, record)
      if (records.size > limit) records.delete(records.keys().next().value as string)
    },
    get: (instanceId) => records.get(instanceId),
    close: () => records.clear()
  }
}

/**
 * Outcomes in a table of their own, in the tracker server's database file (beside the store's tables),
 * so `status` answers for finished instances after a restart too.
 */
export const sqliteOutcomeLog = (path: string): OutcomeLog => {
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
  const get = db.prepare("SELECT job, outcome, progress FROM server_outcomes WHERE instance_id = ?")
  return {
    put: (record) =>
      void put.run(record.instanceId, record.job, JSON.stringify(record.outcome), JSON.stringify(record.progress)),
    get: (instanceId) => {
      const row = get.get(instanceId) as { job: string; outcome: string; progress: string } | undefined
      return row === undefined
        ? undefined
        : {
            instanceId,
            job: row.job,
            outcome: JSON.parse(row.outcome) as Outcome,
            progress: JSON.parse(row.progress) as Progress
          }
    },
    close: () => {
      if (db.isOpen) db.close()
    }
  }
}
