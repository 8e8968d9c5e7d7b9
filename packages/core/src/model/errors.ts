import { Schema } from "effect"

/** A rule of the contract refused an input; nothing was changed. */
export class RejectedError extends Schema.TaggedError<RejectedError>()("RejectedError", {
  reason: Schema.Literals([
    /** No live instance has this id here: never started, finished and released, or its tracker closed. */
    "unknown-instance",
    /** The task is not live in the instance: unknown, or already terminal (R-STATE-4). */
    "unknown-task",
    /** The call came from an older attempt of the task than the current one (R-STATE-2). */
    "stale-attempt",
    /** The task is not placed on the calling worker, or a worker spoke as another one (R-WIRE-4). */
    "wrong-worker",
    /** Kept for compatibility: taskfold raises it nowhere today. */
    "not-running",
    /** A map call named its tasks `ROOT` or `FINAL` (R-MAP-3). */
    "reserved-name",
    /** An item of a map call is over maxTaskBodyBytes; nothing of the call was stored (R-MAP-3). */
    "body-too-large",
    /** A standalone or broadcast job, or the final task, called map (R-MAP-5). */
    "map-not-allowed",
    /** The instance has its outcome, or the worker stopped it: nothing more is taken. */
    "instance-finished",
    /** The worker has not joined the instance (a pull), no such lane, or the worker is closed. */
    "unknown-worker",
    /** The instance already has maxWorkers workers (R-WORK-5). */
    "worker-limit",
    /** A map call starts past the children its task has: an earlier call was lost; it is sent again (R-MAP-6). */
    "map-gap",
    /** A message, a submit or its config that the rules refuse, with what is wrong (R-WIRE-1, submit limits). */
    "bad-input",
    /** A host's submit past its maxLiveInstances. */
    "too-many-instances"
  ]),
  message: Schema.String
}) {}

/** A store could not do what it was asked; the batch it was given was not applied. */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  reason: Schema.Literals([
    /** The store cannot be reached or used now (a closed connection, a failed write); it may work again. */
    "unavailable",
    /** The batch clashes with what is stored (a duplicate id or seq); nothing of it was applied. */
    "conflict",
    /** The batch updates a task that is not stored; nothing of it was applied. */
    "not-found",
    /** What is stored cannot be read back (a row that does not parse, a database of an older taskfold). */
    "corrupt"
  ]),
  message: Schema.String
}) {}

/** A message could not be delivered to a worker or to the instance's owner. */
export class TransportError extends Schema.TaggedError<TransportError>()("TransportError", {
  reason: Schema.Literals([
    /** The receiver could not be reached (connection refused, no such worker, a stopped lane). */
    "unreachable",
    /** The receiver answered with a refusal (an HTTP error status, a refused call across postMessage). */
    "rejected",
    /** No answer in time. */
    "timeout",
    /** The other side is not running: closed, or not started yet. */
    "closed",
    /** The receiver refused the message for its size (HTTP 413); a smaller one may pass. */
    "too-large"
  ]),
  message: Schema.String
}) {}

/** A job definition or a config override is not valid. */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  reason: Schema.Literals([
    /** A config override, or an option of runJob, startJob or startWorker, is not valid. */
    "invalid-config",
    /** defineJob (or runJob) was given something that is not a valid job definition. */
    "invalid-job"
  ]),
  message: Schema.String
}) {}
