import { Effect } from "effect"
import { RejectedError } from "../model/errors.ts"
import type { Outcome, Progress } from "../model/instance.ts"
import type { Tracker } from "./tracker.ts"

/**
 * A released instance as the HTTP routes see it: status still answers its outcome and last progress
 * (R-FIN-6 deleted its tasks), and any worker message finds no instance.
 */
export const finishedTracker = (instanceId: string, outcome: Outcome, lastProgress: Progress | null): Tracker => {
  const gone = Effect.fail(
    new RejectedError({ reason: "unknown-instance", message: `instance ${instanceId} finished` })
  )
  const progress: Progress = {
    ...(lastProgress ?? { instanceId, at: outcome.finishedAt, byName: {}, byWorker: {} }),
    outcome
  }
  return {
    instanceId,
    map: () => gone,
    report: () => gone,
    heartbeat: () => gone,
    pull: () => gone,
    appendContext: () => gone,
    kill: () => gone,
    readResults: () => Effect.succeed([]),
    progress: Effect.succeed(progress),
    onProgress: () => () => {},
    outcome: Effect.succeed(outcome),
    released: Effect.void,
    tick: Effect.void,
    workerGone: () => Effect.void
  }
}
