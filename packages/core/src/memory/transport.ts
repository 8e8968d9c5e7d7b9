import { Effect } from "effect"
import { TransportError } from "../model/errors.ts"
import type { Outcome } from "../model/instance.ts"
import type { TransportShape } from "../ports/transport.ts"
import type { Tracker } from "../tracker/tracker.ts"
import { toTaskError } from "../model/task-error.ts"
import type { LinkError, TrackerLink, WorkerHandle } from "../worker/runtime.ts"

const unreachable = (what: string) => new TransportError({ reason: "unreachable", message: `${what} is not reachable` })

/** A worker's link to a tracker in the same process, found by `lookup` at every call (it may come and go). */
export const directLink = (lookup: Effect.Effect<Tracker, LinkError>): TrackerLink => ({
  report: (batch) => Effect.flatMap(lookup, (found) => found.report(batch)),
  map: (request) => Effect.flatMap(lookup, (found) => found.map(request)),
  heartbeat: (heartbeat) => Effect.flatMap(lookup, (found) => found.heartbeat(heartbeat)),
  appendContext: (request) => Effect.flatMap(lookup, (found) => found.appendContext(request)),
  readResults: (run, afterSeq, limit) => Effect.flatMap(lookup, (found) => found.readResults(run, afterSeq, limit)),
  pull: (request) => Effect.flatMap(lookup, (found) => found.pull(request))
})

/**
 * Trackers and workers in one process, talking by direct calls. Removing a worker makes it unreachable,
 * as a crashed process would be.
 */
export const makeMemoryNetwork = () => {
  const workers = new Map<string, WorkerHandle>()
  const trackers = new Map<string, Tracker>()
  const owners = new Map<string, (outcome: Outcome) => void>()

  const tracker = (instanceId: string) => {
    const found = trackers.get(instanceId)
    return found === undefined ? Effect.fail(unreachable(`the tracker of ${instanceId}`)) : Effect.succeed(found)
  }

  const transport: TransportShape = {
    send: (workerId, batch) =>
      Effect.suspend(() => {
        const worker = workers.get(workerId)
        if (worker === undefined) return Effect.fail(unreachable(`worker ${workerId}`))
        const refused = worker.deliver(batch)
        return refused === undefined
          ? Effect.void
          : Effect.fail(new TransportError({ reason: "rejected", message: refused.message }))
      }),
    stop: (workerId, message) =>
      Effect.suspend(() => {
        const worker = workers.get(workerId)
        if (worker === undefined) return Effect.fail(unreachable(`worker ${workerId}`))
        worker.stop(message)
        return Effect.void
      }),
    deliverOutcome: (instanceId, outcome) =>
      Effect.suspend(() => {
        const owner = owners.get(instanceId)
        if (owner === undefined) return Effect.fail(unreachable(`the owner of ${instanceId}`))
        try {
          owner(outcome)
        } catch (error) {
          return Effect.fail(
            new TransportError({
              reason: "rejected",
              message: `the owner of ${instanceId} threw: ${toTaskError(error).message}`
            })
          )
        }
        return Effect.void
      })
  }

  const link = (instanceId: string): TrackerLink => directLink(tracker(instanceId))

  return {
    transport,
    link,
    addWorker: (worker: WorkerHandle) => void workers.set(worker.id, worker),
    removeWorker: (workerId: string) => void workers.delete(workerId),
    addTracker: (found: Tracker) => void trackers.set(found.instanceId, found),
    removeTracker: (instanceId: string) => void trackers.delete(instanceId),
    setOwner: (instanceId: string, owner: (outcome: Outcome) => void) => void owners.set(instanceId, owner)
  }
}
export type MemoryNetwork = ReturnType<typeof makeMemoryNetwork>
