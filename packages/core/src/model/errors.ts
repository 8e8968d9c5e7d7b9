import { Schema } from "effect"

/** A rule of the contract refused an input; nothing was changed. */
export class RejectedError extends Schema.TaggedError<RejectedError>()("RejectedError", {
  reason: Schema.Literals([
    "unknown-instance",
    "unknown-task",
    "stale-attempt",
    "wrong-worker",
    "not-running",
    "reserved-name",
    "body-too-large",
    "map-not-allowed",
    "instance-finished",
    "unknown-worker",
    "worker-limit",
    "map-gap",
    "bad-input",
    /** A host's submit past its maxLiveInstances. */
    "too-many-instances"
  ]),
  message: Schema.String
}) {}

/** A store could not do what it was asked; the batch it was given was not applied. */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  reason: Schema.Literals(["unavailable", "conflict", "not-found", "corrupt"]),
  message: Schema.String
}) {}

/** A message could not be delivered to a worker or to the instance's owner. */
export class TransportError extends Schema.TaggedError<TransportError>()("TransportError", {
  /** too-large: the receiver refused the message for its size (HTTP 413); a smaller one may pass. */
  reason: Schema.Literals(["unreachable", "rejected", "timeout", "closed", "too-large"]),
  message: Schema.String
}) {}

/** A job definition or a config override is not valid. */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  reason: Schema.Literals(["invalid-config", "invalid-job"]),
  message: Schema.String
}) {}
