import { Effect } from "effect"
import { TransportError } from "../model/errors.ts"
import type { Outcome } from "../model/instance.ts"
import type { TransportShape } from "../ports/transport.ts"
import type { Tracker } from "../tracker/tracker.ts"
import type { TrackerLink, WorkerHandle } from "../worker/runtime.ts"

const unreachable = (what: string) => new TransportError({ reason: "unreachable", message: `${what} is not reachable` })

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
        worker.deliver(batch)
        return Effect.void
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
        owner(outcome)
        return Effect.void
      })
  }

  const link = (instanceId: string): TrackerLink => ({
    report: (batch) => Effect.flatMap(tracker(instanceId), (found) => found.report(batch)),
    map: (request) => Effect.flatMap(tracker(instanceId), (found) => found.map(request)),
    heartbeat: (heartbeat) => Effect.flatMap(tracker(instanceId), (found) => found.heartbeat(heartbeat)),
    appendContext: (request) => Effect.flatMap(tracker(instanceId), (found) => found.appendContext(request)),
    readResults: (run, afterSeq, limit) => Effect.flatMap(tracker(instanceId), (found) => found.readResults(run, afterSeq, limit))
  })

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
