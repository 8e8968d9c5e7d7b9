import { Effect } from "effect"
import type { OutcomeLogShape, OutcomeRecord, OutcomeRetention } from "../ports/outcome-log.ts"

/** Outcomes in memory: the newest `maxRecords` (default 10,000), none older than `maxAgeMs`. */
export const makeMemoryOutcomeLog = (retention: number | OutcomeRetention = {}): OutcomeLogShape => {
  const { maxRecords = 10_000, maxAgeMs } = typeof retention === "number" ? { maxRecords: retention } : retention
  const records = new Map<string, OutcomeRecord>()
  return {
    put: (record) =>
      Effect.sync(() => {
        records.delete(record.instanceId)
        records.set(record.instanceId, record)
        while (records.size > maxRecords) records.delete(records.keys().next().value as string)
        if (maxAgeMs === undefined) return
        const cutoff = record.outcome.finishedAt - maxAgeMs
        for (const [id, kept] of records) if (kept.outcome.finishedAt < cutoff) records.delete(id)
      }),
    get: (instanceId) => Effect.sync(() => records.get(instanceId)),
    list: (count) => Effect.sync(() => [...records.values()].reverse().slice(0, count))
  }
}
