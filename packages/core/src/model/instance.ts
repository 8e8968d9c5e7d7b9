import { Schema } from "effect"
import { JobConfig } from "./config.ts"
import { TaskErrorSchema } from "./task-error.ts"

export const JobKind = Schema.Literals(["standalone", "broadcast", "map", "mapReduce"])
export type JobKind = typeof JobKind.Type

/** How many tasks an instance (or a run) created, and how they ended (R-FIN-4). */
export const TaskCounts = Schema.Struct({
  created: Schema.Int,
  succeeded: Schema.Int,
  failed: Schema.Int
})
export type TaskCounts = typeof TaskCounts.Type

/** A task that failed for good, as an outcome names it (R-FIN-8). */
export const FailedTask = Schema.Struct({
  taskId: Schema.String,
  name: Schema.String,
  attempt: Schema.Int,
  error: TaskErrorSchema
})
export type FailedTask = typeof FailedTask.Type

export const Outcome = Schema.Struct({
  ok: Schema.Boolean,
  /** The final task's result, the counts line, or the reason of a failure. */
  result: Schema.String,
  finishedAt: Schema.Number,
  counts: TaskCounts,
  /** The first maxReportedErrors tasks that failed for good, in the order they failed. */
  errors: Schema.Array(FailedTask)
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
  finalCreated: Schema.Boolean,
  /** The first failed tasks of the run, for its outcome (R-FIN-8). */
  errors: Schema.optionalKey(Schema.Array(FailedTask)),
  /** The root failed for good: the run can never be ok (R-FIN-8), also after a restart. */
  rootFailed: Schema.optionalKey(Schema.Boolean)
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
  /** The next batch seq: batches are numbered across workers and tracker restarts. */
  nextBatch: Schema.optionalKey(Schema.Int),
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
  /** Deliveries to it got no receipt, twice or more in a row: it gets one sub-task at a time, after a rest. */
  unhealthy?: true
}
/** A snapshot of an instance's progress (R-PROG-1). `running` counts Received and Running tasks. */
export interface Progress {
  readonly instanceId: string
  readonly at: number
  readonly byName: Record<string, NameProgress>
  readonly byWorker: Record<string, WorkerProgress>
  readonly outcome: Outcome | null
}
