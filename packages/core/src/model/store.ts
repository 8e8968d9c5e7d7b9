import { Schema } from "effect"
import { InstanceRow } from "./instance.ts"
import { TaskRow, TaskUpdate } from "./task.ts"

/**
 * One atomic store write: everything a tracker's step changed (group commit). The arrays are the
 * machine's own, filled in place while it steps.
 */
export const WriteBatch = Schema.Struct({
  instance: InstanceRow,
  inserts: Schema.mutable(Schema.Array(TaskRow)),
  updates: Schema.mutable(Schema.Array(TaskUpdate)),
  deleteRuns: Schema.mutable(Schema.Array(Schema.Int)),
  deleteInstance: Schema.Boolean
})
export type WriteBatch = typeof WriteBatch.Type

/** Terminal tasks of a stored instance counted by name, worker and status: enough to rebuild its progress. */
export const TerminalCount = Schema.Struct({
  name: Schema.String,
  worker: Schema.NullOr(Schema.String),
  status: Schema.Int,
  count: Schema.Int
})
export type TerminalCount = typeof TerminalCount.Type

/** Everything a tracker needs to resume an instance (R-REC-1). */
export const StoredInstance = Schema.Struct({
  instance: InstanceRow,
  /** Tasks that are not terminal, in seq order. */
  live: Schema.Array(TaskRow),
  terminal: Schema.Array(TerminalCount)
})
export type StoredInstance = typeof StoredInstance.Type

/** A terminal task as reduce reads it. */
export const StoredResult = Schema.Struct({
  id: Schema.String,
  seq: Schema.Int,
  name: Schema.String,
  status: Schema.Int,
  result: Schema.NullOr(Schema.String),
  resultCut: Schema.Boolean,
  lastError: Schema.NullOr(Schema.String)
})
export type StoredResult = typeof StoredResult.Type

/** A page of terminal results of a run, in seq order (what the final task reads). */
export const ResultsPage = Schema.Array(StoredResult)
export type ResultsPage = typeof ResultsPage.Type
