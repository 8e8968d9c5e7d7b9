import { Context, type Effect } from "effect"
import type { TransportError } from "../model/errors.ts"
import type { Outcome } from "../model/instance.ts"
import type { StopMessage, TaskBatch } from "../model/messages.ts"

/**
 * How a tracker reaches out: task batches and stops to workers, the outcome to the instance's owner.
 * What comes in (reports, map calls, heartbeats, pulls) the adapter hands to the tracker's methods.
 */
export interface TransportShape {
  readonly send: (workerId: string, batch: TaskBatch) => Effect.Effect<void, TransportError>
  readonly stop: (workerId: string, message: StopMessage) => Effect.Effect<void, TransportError>
  /** Succeeds once the owner has the outcome (R-FIN-6); the tracker re-sends the same outcome until then. */
  readonly deliverOutcome: (instanceId: string, outcome: Outcome) => Effect.Effect<void, TransportError>
}

export class Transport extends Context.Service<Transport, TransportShape>()("taskfold/Transport") {}
