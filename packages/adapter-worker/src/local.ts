import { RejectedError, type Job } from "@taskfold/core"
import {
  startWorker,
  type StopMessage,
  type TaskBatch,
  type Tracker,
  type TrackerLink,
  type WorkerHandle
} from "@taskfold/core/adapter"
import { Effect, Exit, Scope } from "effect"

/**
 * The worker inside the object (root, final and broadcast preProcess run there). Core's worker runtime
 * runs only while it holds a task: it starts with a batch and stops once every task it was given has had
 * its final status accepted (or was stopped). Between tasks the object keeps no timer of its own, so it
 * can be evicted and its alarm brings it back. The tracker never judges the local worker by heartbeats
 * (R-WORK-4); `join` registers it once.
 */
export interface LocalWorker {
  /** Refused (nothing taken) if the batch leaves out params the fresh runtime does not have. */
  readonly deliver: (batch: TaskBatch) => RejectedError | undefined
  readonly stop: (message: StopMessage) => void
  /** Registers the worker with the tracker (a heartbeat sent by the object). */
  readonly join: Effect.Effect<void>
  readonly close: () => void
}

export const makeLocalWorker = (options: {
  readonly id: string
  readonly slots: number
  readonly tracker: Tracker
  readonly jobs: (name: string) => Job | undefined
  readonly heartbeatInterval: number
}): LocalWorker => {
  const { tracker } = options
  const held = new Set<string>()
  const key = (taskId: string, attempt: number) => `${taskId}#${attempt}`
  let running: { readonly scope: Scope.Closeable; readonly handle: WorkerHandle } | undefined
  let closed = false

  const release = () => {
    const current = running
    if (current === undefined || held.size > 0) return
    running = undefined
    void Effect.runPromise(Scope.close(current.scope, Exit.void))
  }

  const link: TrackerLink = {
    report: (batch) =>
      tracker.report(batch).pipe(
        Effect.tap(() =>
          Effect.sync(() => {
            for (const report of batch.reports) if (report.status >= 5) held.delete(key(report.taskId, report.attempt))
            if (held.size === 0) queueMicrotask(release)
          })
        )
      ),
    map: tracker.map,
    heartbeat: tracker.heartbeat,
    appendContext: tracker.appendContext,
    readResults: tracker.readResults
  }

  const ensure = (): WorkerHandle => {
    if (running !== undefined) return running.handle
    const scope = Effect.runSync(Scope.make())
    const handle = Effect.runSync(
      startWorker({
        id: options.id,
        slots: options.slots,
        jobs: options.jobs,
        connect: () => link,
        heartbeatInterval: options.heartbeatInterval
      }).pipe(Scope.provide(scope))
    )
    running = { scope, handle }
    return handle
  }

  return {
    deliver: (batch) => {
      if (closed)
        return new RejectedError({ reason: "unknown-worker", message: `local worker ${options.id} is closed` })
      const refused = ensure().deliver(batch)
      if (refused !== undefined) {
        if (held.size === 0) queueMicrotask(release)
        return refused
      }
      for (const task of batch.tasks) held.add(key(task.id, task.attempt))
      return undefined
    },
    stop: (message) => {
      if (running === undefined) return
      running.handle.stop(message)
      if (message.taskIds === null) held.clear()
      else {
        const stopped = new Set(message.taskIds)
        for (const entry of [...held]) if (stopped.has(entry.slice(0, entry.lastIndexOf("#")))) held.delete(entry)
      }
      if (held.size === 0) queueMicrotask(release)
    },
    join: Effect.ignore(
      tracker.heartbeat({
        instanceId: tracker.instanceId,
        workerId: options.id,
        slots: options.slots,
        freeSlots: options.slots,
        queueLength: 0,
        idle: false
      })
    ),
    close: () => {
      closed = true
      held.clear()
      release()
    }
  }
}
