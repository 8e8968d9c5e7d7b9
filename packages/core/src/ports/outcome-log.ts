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

export class OutcomeLog extends Context.Service<OutcomeLog, OutcomeLogShape>()("taskfold/OutcomeLog") {}
