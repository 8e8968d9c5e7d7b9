import { Schema } from "effect"
import { ReportedStatusSchema, TaskKindSchema } from "./status.ts"
import { TaskBody } from "./task.ts"

const Id = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(256))
const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

/** One task as a worker receives it. */
export const DispatchedTask = Schema.Struct({
  id: Id,
  name: Schema.String,
  kind: TaskKindSchema,
  body: TaskBody,
  attempt: Count
})
export type DispatchedTask = typeof DispatchedTask.Type

/** Tracker → worker: tasks to run. `seq` numbers the batches sent to one worker. */
export const TaskBatch = Schema.Struct({
  instanceId: Id,
  job: Schema.String,
  params: Schema.String,
  seq: Count,
  context: Schema.Record(Schema.String, Schema.Json),
  tasks: Schema.Array(DispatchedTask)
})
export type TaskBatch = typeof TaskBatch.Type

export const StatusReport = Schema.Struct({
  taskId: Id,
  attempt: Count,
  status: ReportedStatusSchema,
  /** JSON text of the result, with Succeeded. */
  result: Schema.optionalKey(Schema.String),
  /** Why it failed, with Failed. */
  error: Schema.optionalKey(Schema.String)
})
export type StatusReport = typeof StatusReport.Type

/** Worker → tracker: status reports, the newest per task. */
export const ReportBatch = Schema.Struct({
  instanceId: Id,
  workerId: Id,
  reports: Schema.Array(StatusReport)
})
export type ReportBatch = typeof ReportBatch.Type

/** Worker → tracker: a running task maps out children (R-MAP-1). */
export const MapRequest = Schema.Struct({
  instanceId: Id,
  workerId: Id,
  taskId: Id,
  attempt: Count,
  name: Schema.String,
  /**
   * How many items this attempt mapped before this call: its items are numbers from + 1 … from + n, so a
   * replayed call creates nothing again (R-MAP-2). Without it the tracker counts the calls it received.
   */
  from: Schema.optionalKey(Count),
  bodies: Schema.Array(TaskBody)
})
export type MapRequest = typeof MapRequest.Type

/**
 * Worker → tracker, every heartbeatInterval. `idle`: the worker holds no task of the instance and has
 * no status left to report, so a task it acknowledged but no longer holds was lost (R-WORK-3).
 */
export const Heartbeat = Schema.Struct({
  instanceId: Id,
  workerId: Id,
  slots: Count,
  freeSlots: Count,
  queueLength: Count,
  idle: Schema.Boolean
})
export type Heartbeat = typeof Heartbeat.Type

/** Worker → tracker, pull mode: up to pageSize tasks please (R-DISP-9). */
export const PullRequest = Schema.Struct({
  instanceId: Id,
  workerId: Id,
  pageSize: Schema.Int.check(Schema.isGreaterThan(0))
})
export type PullRequest = typeof PullRequest.Type

/** Worker → tracker: a task appends to the instance context (R-CTX-1). */
export const ContextAppend = Schema.Struct({
  instanceId: Id,
  workerId: Id,
  taskId: Id,
  attempt: Count,
  entries: Schema.Record(Schema.String, Schema.Json)
})
export type ContextAppend = typeof ContextAppend.Type

/** Owner → tracker: kill the instance, or one task (R-FIN-7). */
export const KillRequest = Schema.Struct({
  instanceId: Id,
  taskId: Schema.NullOr(Id),
  reason: Schema.String
})
export type KillRequest = typeof KillRequest.Type

/** Tracker → worker: stop these tasks, or every task of the instance (taskIds null). */
export const StopMessage = Schema.Struct({
  instanceId: Id,
  taskIds: Schema.NullOr(Schema.Array(Id)),
  reason: Schema.String
})
export type StopMessage = typeof StopMessage.Type
