import { type Context, Effect, Exit, Scope } from "effect"
import { RejectedError } from "../model/errors.ts"
import type { StopMessage, TaskBatch } from "../model/messages.ts"
import { isTerminal } from "../model/status.ts"
import type { Job } from "../model/job.ts"
import type { Executor } from "../worker/execute.ts"
import { startWorker, type TrackerLink, type WorkerHandle } from "../worker/runtime.ts"

/**
 * A worker that runs only while it holds a task: core's worker runtime starts with a batch and stops once
 * every task it was given has had its final status accepted (or was stopped). Between tasks it keeps no
 * timer, so a host that sleeps between requests (a Durable Object) can. The host declares it a standing
 * worker (R-WORK-6): the tracker sends it work without a heartbeat to start it.
 */
export interface OnDemandWorker {
  readonly id: string
  readonly deliver: (batch: TaskBatch) => RejectedError | undefined
  readonly stop: (message: StopMessage) => void
  /** Whether a runtime is up now (it holds tasks). */
  readonly running: () => boolean
  readonly close: () => void
}

export const makeOnDemandWorker = (options: {
  readonly id: string
  readonly slots: number
  readonly jobs: (name: string) => Job | undefined
  readonly connect: (instanceId: string) => TrackerLink
  readonly heartbeatInterval: number
  readonly executor?: Executor
  /** The services its runtimes run with (a test's clock, say); the default ones otherwise. */
  readonly context?: Context.Context<never>
}): OnDemandWorker => {
  const runSync = options.context === undefined ? Effect.runSync : Effect.runSyncWith(options.context)
  const runPromise = options.context === undefined ? Effect.runPromise : Effect.runPromiseWith(options.context)
  /** Tasks given and not yet settled, as instance, task and attempt. */
  const held = new Set<string>()
  const key = (instanceId: string, taskId: string, attempt: number) => `${instanceId}\n${taskId}\n${attempt}`
  let current: { readonly scope: Scope.Closeable; readonly handle: WorkerHandle } | undefined
  let closed = false
  /**
   * Each instance's params, from the first batch that carried them: the tracker sends them once per worker, and
   * a fresh runtime (the last one stopped when it held nothing) needs them again.
   */
  const params = new Map<string, string>()

  const release = () => {
    const up = current
    if (up === undefined || held.size > 0) return
    current = undefined
    void runPromise(Scope.close(up.scope, Exit.void))
  }
  const releaseSoon = () => {
    if (held.size === 0) queueMicrotask(release)
  }

  const connect = (instanceId: string): TrackerLink => {
    const link = options.connect(instanceId)
    return {
      ...link,
      report: (batch) =>
        link.report(batch).pipe(
          Effect.tap(() =>
            Effect.sync(() => {
              for (const report of batch.reports)
                if (isTerminal(report.status)) held.delete(key(batch.instanceId, report.taskId, report.attempt))
              releaseSoon()
            })
          )
        )
    }
  }

  const ensure = (): WorkerHandle => {
    if (current !== undefined) return current.handle
    const scope = runSync(Scope.make())
    const handle = runSync(
      startWorker({
        id: options.id,
        slots: options.slots,
        jobs: options.jobs,
        connect,
        heartbeatInterval: options.heartbeatInterval,
        ...(options.executor === undefined ? {} : { executor: options.executor })
      }).pipe(Effect.orDie, Scope.provide(scope))
    )
    current = { scope, handle }
    return handle
  }

  return {
    id: options.id,
    deliver: (given) => {
      if (closed) return new RejectedError({ reason: "unknown-worker", message: `worker ${options.id} is closed` })
      if (given.params !== undefined) params.set(given.instanceId, given.params)
      const known = params.get(given.instanceId)
      const batch = given.params === undefined && known !== undefined ? { ...given, params: known } : given
      const refused = ensure().deliver(batch)
      if (refused !== undefined) {
        releaseSoon()
        return refused
      }
      for (const task of batch.tasks) held.add(key(batch.instanceId, task.id, task.attempt))
      return undefined
    },
    stop: (message) => {
      // Every task of the instance stopped: it is over here.
      if (message.taskIds === null) params.delete(message.instanceId)
      if (current === undefined) return
      current.handle.stop(message)
      const stopped = message.taskIds === null ? undefined : new Set(message.taskIds)
      for (const entry of [...held]) {
        const [instanceId, taskId] = entry.split("\n")
        if (instanceId === message.instanceId && (stopped === undefined || stopped.has(taskId!))) held.delete(entry)
      }
      releaseSoon()
    },
    running: () => current !== undefined,
    close: () => {
      closed = true
      held.clear()
      params.clear()
      release()
    }
  }
}
