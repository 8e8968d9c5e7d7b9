import { Schema } from "effect"
import { RejectedError } from "./errors.ts"
import { Id } from "./id.ts"
import { ReportedStatusSchema, TaskKindSchema } from "./status.ts"
import { TaskBody } from "./task.ts"
import { TaskErrorSchema } from "./task-error.ts"

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
/** Slots a worker may announce: enough for any machine, small enough that credit arithmetic stays exact. */
export const MAX_SLOTS = 65_536
/** Reports in one message: a worker sends more as several, so no one message holds the tracker long (R-WIRE-3). */
export const MAX_REPORTS_PER_MESSAGE = 4_096
const Slots = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: MAX_SLOTS }))

/** One task as a worker receives it. */
export const DispatchedTask = Schema.Struct({
  id: Id,
  name: Schema.String,
  kind: TaskKindSchema,
  body: TaskBody,
  attempt: Count
})
export type DispatchedTask = typeof DispatchedTask.Type

/**
 * Tracker → worker: tasks to run. `seq` numbers the instance's batches (across workers and tracker restarts).
 * `params` (JSON text) comes with the batches until the worker has taken one, not with every batch;
 * `maxResultBytes` is the limit the worker checks results against before it sends them (R-RETRY-3).
 */
export const TaskBatch = Schema.Struct({
  instanceId: Id,
  job: Schema.String,
  params: Schema.optionalKey(Schema.String),
  maxResultBytes: Schema.optionalKey(Count),
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
  /** Why it failed, with Failed (R-RETRY-5); plain text is taken as the message. */
  error: Schema.optionalKey(Schema.Union([TaskErrorSchema, Schema.String]))
})
export type StatusReport = typeof StatusReport.Type

/** Worker → tracker: status reports, the newest per task. */
export const ReportBatch = Schema.Struct({
  instanceId: Id,
  workerId: Id,
  /**
   * Numbers this worker's messages to the instance (reports and heartbeats), so an older heartbeat is known as such.
   */
  n: Schema.optionalKey(Count),
  /** The run of the worker's process that sent it: a retired run's word that it holds a task is not taken. */
  incarnation: Schema.optionalKey(Id),
  reports: Schema.Array(StatusReport).check(Schema.isMaxLength(MAX_REPORTS_PER_MESSAGE))
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
 * `incarnation` names one run of the worker's process: a new one means the old one's tasks are gone.
 * `seen`: the highest batch seq it had taken when it wrote the heartbeat; `n`: its message number. An
 * idle heartbeat judges only tasks sent in batches it had seen, and none if a later message of the
 * worker arrived before it.
 */
export const Heartbeat = Schema.Struct({
  instanceId: Id,
  workerId: Id,
  slots: Slots,
  freeSlots: Slots,
  queueLength: Count,
  idle: Schema.Boolean,
  incarnation: Schema.optionalKey(Id),
  seen: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(-1))),
  /** The lowest batch seq this incarnation took (-1: none): what a new incarnation holds was sent from there on. */
  firstSeen: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(-1))),
  n: Schema.optionalKey(Count)
})
export type Heartbeat = typeof Heartbeat.Type

/** Tracker → worker, the answer to a heartbeat: how the instance hands out sub-tasks (R-DISP-9). */
export const HeartbeatReply = Schema.Struct({
  dispatchMode: Schema.Literals(["push", "pull"])
})
export type HeartbeatReply = typeof HeartbeatReply.Type

/** Worker → tracker, pull mode: up to pageSize tasks please (R-DISP-9). */
export const PullRequest = Schema.Struct({
  instanceId: Id,
  workerId: Id,
  /** A pull from a retired run of the worker's process gets nothing: no one would run what it took. */
  incarnation: Schema.optionalKey(Id),
  pageSize: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: MAX_SLOTS }))
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

/** The tracker's answer to a report batch. */
export const ReportsReply = Schema.Struct({
  applied: Schema.Int,
  dropped: Schema.Int,
  /** Tasks not live in memory: the tracker looks them up in the store before it answers (R-STATE-4). */
  unknown: Schema.Array(Schema.String),
  rejected: Schema.Array(Schema.Struct({ taskId: Schema.String, error: RejectedError }))
})
export type ReportsReply = typeof ReportsReply.Type
