import { Schema } from "effect"
import { TaskKindSchema, TaskStatusSchema } from "./status.ts"
import type { TaskError } from "./task-error.ts"

/** A task body: JSON text, or raw bytes. */
export const TaskBody = Schema.Union([Schema.String, Schema.instanceOf(Uint8Array)])
export type TaskBody = typeof TaskBody.Type

/** One stored task of an instance. `seq` is its creation number, dense from 0: the order reduce sees. */
export const TaskRow = Schema.Struct({
  id: Schema.String,
  seq: Schema.Int,
  /** Sub-instance number; 0 for plain instances (R-FREQ-1). */
  run: Schema.Int,
  name: Schema.String,
  kind: TaskKindSchema,
  body: TaskBody,
  status: TaskStatusSchema,
  worker: Schema.NullOr(Schema.String),
  attempt: Schema.Int,
  failures: Schema.Int,
  redeliveries: Schema.Int,
  /** Highest child number this task has mapped, so a retried mapper re-creates none (R-MAP-2). */
  childCount: Schema.Int,
  /** A retried task waits until then (R-RETRY-1). */
  dueAt: Schema.NullOr(Schema.Number),
  /** JSON text of the result, at most maxResultBytes of UTF-8 (R-RETRY-3). */
  result: Schema.NullOr(Schema.String),
  /** Always false: results are no longer cut (R-RETRY-3); kept so rows stored before stay readable. */
  resultCut: Schema.Boolean,
  /** JSON text of the last TaskError (R-RETRY-5). */
  lastError: Schema.NullOr(Schema.String)
})
export type TaskRow = typeof TaskRow.Type

/** Everything about a stored task that can change after it was created, with its id and seq to find it by. */
export const TaskUpdate = TaskRow.mapFields(({ run: _r, name: _n, kind: _k, body: _b, ...rest }) => rest)
export type TaskUpdate = typeof TaskUpdate.Type

/** What reduce and postProcess see of a terminal task (R-FIN-3). */
export interface TaskResult {
  readonly taskId: string
  readonly name: string
  readonly ok: boolean
  /** The value the processor returned (ok), or the error's message (not ok). */
  readonly result: unknown
  /** Why it failed (not ok): tag, reason, message and causes (R-RETRY-5). */
  readonly error?: TaskError | undefined
}
