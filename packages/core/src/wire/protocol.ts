import { Schema } from "effect"
import { Id } from "../model/id.ts"

/** Paths of the HTTP protocol; one place for servers and clients. */
export const paths = {
  instances: "/v1/instances",
  instance: (id: string) => `/v1/instances/${encodeURIComponent(id)}`,
  call: (id: string, call: InstanceCall) => `/v1/instances/${encodeURIComponent(id)}/${call}`,
  workers: "/v1/workers",
  batches: "/v1/batches",
  stop: "/v1/stop",
  invite: "/v1/invite"
} as const

export type InstanceCall = "reports" | "map" | "heartbeat" | "pull" | "context" | "kill" | "results"

export { SubmitRequest } from "../model/submit.ts"

/** A worker asks an instance's tracker to take it on: it joins with its own heartbeat (R-WORK-5). */
export const Invite = Schema.Struct({ instanceId: Id })
export type Invite = typeof Invite.Type

export const KillBody = Schema.Struct({
  taskId: Schema.NullOr(Schema.String),
  reason: Schema.String
})

/** A worker process announcing where tasks reach it. */
export const WorkerRegistration = Schema.Struct({
  workerId: Id,
  url: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(2_048)),
  /** The bearer token the tracker calls this worker with: chosen by the worker, it opens nothing else. */
  key: Schema.String.check(Schema.isMinLength(16), Schema.isMaxLength(256)),
  slots: Schema.Int.check(Schema.isGreaterThan(0)),
  /** Bounded, like every count a peer announces (R-WIRE-3): a registration holds little memory. */
  jobs: Schema.Array(Schema.String.check(Schema.isMaxLength(256))).check(Schema.isMaxLength(256))
})
export type WorkerRegistration = typeof WorkerRegistration.Type

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
/** `GET /v1/instances`: the operator's instance list. */
export const ListQuery = Schema.Struct({
  limit: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10_000 })),
  job: Schema.optionalKey(Schema.String),
  state: Schema.optionalKey(Schema.Literals(["running", "succeeded", "failed"]))
})
export type ListQuery = typeof ListQuery.Type
export const ResultsQuery = Schema.Struct({
  run: Count,
  afterSeq: Schema.Int.check(Schema.isGreaterThanOrEqualTo(-1)),
  limit: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10_000 }))
})

/** Errors travel as JSON with their tag and reason, so the client can rebuild the typed error. */
export interface WireError {
  readonly error: {
    readonly tag: string
    readonly reason: string
    readonly message: string
    readonly path?: string
  }
}

/**
 * Bodies larger than this answer 413 (R-WIRE-2). Parsing is synchronous, so this bounds how long one message
 * holds the tracker: 8 MiB of the smallest JSON objects parse in about a second on 2 cores; results and bodies, which
 * are strings, parse far faster. Each result is bounded by maxResultBytes, each body by maxTaskBodyBytes.
 */
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
/** Messages that carry no bodies or results (heartbeat, pull, kill, registration) are refused beyond this. */
export const SMALL_BODY_BYTES = 64 * 1024
