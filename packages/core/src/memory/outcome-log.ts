import { Effect } from "effect"
import type { OutcomeLogShape, OutcomeRecord } from "../ports/outcome-log.ts"

/** Outcomes in memory: the newest `limit` are kept. */
export const makeMemoryOutcomeLog = (limit = 10_000): OutcomeLogShape => {
  const records = new Map<string, OutcomeRecord>()
  return {
    put: (record) =>
      Effect.sync(() => {
        records.delete(record.instanceId)
        records.set(record.instanceId, record)
        if (records.size > limit) records.delete(records.keys().next().value as string)
      }),
    get: (instanceId) => Effect.sync(() => records.get(instanceId)),
    list: (count) => Effect.sync(() => [...records.values()].reverse().slice(0, count))
  }
}
