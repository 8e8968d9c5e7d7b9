import { Context, type Effect } from "effect"
import type { StoreError } from "../model/errors.ts"
import type { Outcome, Progress } from "../model/instance.ts"

/** What a host keeps of an instance once its tracker let go of it: status still answers (R-FIN-6). */
export interface OutcomeRecord {
  readonly instanceId: string
  readonly job: string
  readonly outcome: Outcome
  /** The last progress, with the outcome in it. */
  readonly progress: Progress
}

/**
 * Outcomes outlive their instance's tasks: once the owner has an outcome the tracker deletes the tasks,
 * and the host answers status, list and results from here.
 */
export interface OutcomeLogShape {
  /** Stores (or replaces) an instance's record. */
  readonly put: (record: OutcomeRecord) => Effect.Effect<void, StoreError>
  readonly get: (instanceId: string) => Effect.Effect<OutcomeRecord | undefined, StoreError>
  /** The newest records first, at most `limit`. */
  readonly list: (limit: number) => Effect.Effect<ReadonlyArray<OutcomeRecord>, StoreError>
}

/**
 * How long finished instances stay listed and answer status: their outcome, counts, first errors and per-name
 * summary outlive their tasks this long. Past either bound the oldest records go, at the next put.
 */
export interface OutcomeRetention {
  /** At most this many records (the memory log's default 10,000; SQL's 100,000). */
  readonly maxRecords?: number
  /** Records of instances that finished longer ago than this, in ms; no age limit by default. */
  readonly maxAgeMs?: number
}

export class OutcomeLog extends Context.Service<OutcomeLog, OutcomeLogShape>()("taskfold/OutcomeLog") {}
