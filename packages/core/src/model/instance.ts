import { Schema } from "effect"
import { JobConfig } from "./config.ts"

export const JobKind = Schema.Literals(["standalone", "broadcast", "map", "mapReduce"])
export type JobKind = typeof JobKind.Type

export const Outcome = Schema.Struct({
  ok: Schema.Boolean,
  /** The final task's result, the counts line, or the reason of a failure. */
  result: Schema.String,
  finishedAt: Schema.Number
})
export type Outcome = typeof Outcome.Type

/** One sub-instance's record, kept as history for frequent jobs (R-FREQ-3). */
export const RunRecord = Schema.Struct({
  run: Schema.Int,
  triggeredAt: Schema.Number,
  status: Schema.Literals(["running", "succeeded", "failed", "skipped"]),
  result: Schema.String
})
export type RunRecord = typeof RunRecord.Type

/** The counters of a live run, written in the same batch as the status changes they count (R-FIN-1). */
export const RunCounters = Schema.Struct({
  run: Schema.Int,
  startedAt: Schema.Number,
  created: Schema.Int,
  succeeded: Schema.Int,
  failed: Schema.Int,
  finalCreated: Schema.Boolean
})
export type RunCounters = typeof RunCounters.Type

/** The stored state of an instance besides its tasks: enough, with the tasks, to resume it (R-REC-1). */
export const InstanceRow = Schema.Struct({
  id: Schema.String,
  job: Schema.String,
  kind: JobKind,
  config: JobConfig,
  params: Schema.String,
  localWorker: Schema.String,
  startedAt: Schema.Number,
  seed: Schema.Int,
  nextSeq: Schema.Int,
  nextRun: Schema.Int,
  nextTriggerAt: Schema.NullOr(Schema.Number),
  context: Schema.Record(Schema.String, Schema.Json),
  runs: Schema.Array(RunCounters),
  history: Schema.Array(RunRecord),
  outcome: Schema.NullOr(Outcome),
  outcomeAcked: Schema.Boolean
})
export type InstanceRow = typeof InstanceRow.Type

export interface NameProgress {
  total: number
  waiting: number
  dispatched: number
  running: number
  succeeded: number
  failed: number
}
export interface WorkerProgress {
  assigned: number
  running: number
  succeeded: number
  failed: number
}
/** A snapshot of an instance's progress (R-PROG-1). `running` counts Received and Running tasks. */
export interface Progress {
  readonly instanceId: string
  readonly at: number
  readonly byName: Record<string, NameProgress>
  readonly byWorker: Record<string, WorkerProgress>
  readonly outcome: Outcome | null
}
