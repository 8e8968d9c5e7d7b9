import { Schema } from "effect"
import { JobConfigOverrides } from "./config.ts"
import { Id } from "./id.ts"

/** A new instance of a job by name: what a host's submit takes, from the wire or from a direct call. */
export const SubmitRequest = Schema.Struct({
  job: Schema.String.check(Schema.isMinLength(1)),
  params: Schema.optionalKey(Schema.Json),
  config: Schema.optionalKey(JobConfigOverrides),
  /** Submitting an id the host has (live, stored or finished) starts nothing: the answer is the same id. */
  instanceId: Schema.optionalKey(Id)
})
export type SubmitRequest = typeof SubmitRequest.Type
