import { Effect, Scope } from "effect"
import { makeMemoryNetwork } from "../memory/transport.ts"
import { makeMemoryStore } from "../memory/store.ts"
import { resolveConfig, type JobConfig, type JobConfigOverrides } from "../model/config.ts"
import type { ConfigError } from "../model/errors.ts"
import type { Outcome, Progress } from "../model/instance.ts"
import { TaskStore, type TaskStoreShape } from "../ports/task-store.ts"
import { Transport } from "../ports/transport.ts"
import { startTracker, type Tracker } from "../tracker/tracker.ts"
import { startWorker, type WorkerHandle } from "../worker/runtime.ts"
import type { Job } from "./job.ts"

export interface RunOptions {
  /** Workers in this process, the tracker's local worker among them. Default 4. */
  readonly workers?: number
  /** Slots per worker. Default 16. */
  readonly slots?: number
  /** The instance's params: the root task's body, `context.params` everywhere. */
  readonly params?: unknown
  /** Overrides on top of the job's own config. */
  readonly config?: JobConfigOverrides
  readonly instanceId?: string
  /** Called with every progress push (R-PROG-2). */
  readonly onProgress?: (progress: Progress) => void
  /** Where tasks are stored; memory by default. */
  readonly store?: TaskStoreShape
}

export interface RunResult {
  readonly instanceId: string
  readonly ok: boolean
  /** The outcome's result, parsed when it is JSON. */
  readonly result: unknown
  readonly outcome: Outcome
  readonly progress: Progress
}

/** A running instance on in-process workers. */
export interface JobHandle {
  readonly instanceId: string
  readonly tracker: Tracker
  readonly workers: ReadonlyArray<WorkerHandle>
  readonly config: JobConfig
  readonly progress: Effect.Effect<Progress>
  readonly kill: (reason: string) => Effect.Effect<void>
  readonly result: Effect.Effect<RunResult>
}

const parsed = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** Starts an instance of `job` on in-process workers; it lives as long as the scope. */
export const startJob = (job: Job, options: RunOptions = {}): Effect.Effect<JobHandle, ConfigError, Scope.Scope> =>
  Effect.gen(function* () {
    const config = yield* resolveConfig({ ...job.config, ...options.config })
    const network = makeMemoryNetwork()
    const store = options.store ?? makeMemoryStore()
    const instanceId = options.instanceId ?? `${job.name}-${globalThis.crypto.randomUUID()}`
    const localWorkerId = "local"
    const tracker = yield* startTracker({
      instanceId,
      job: job.name,
      kind: job.kind,
      config,
      params: JSON.stringify(options.params ?? null),
      localWorkerId
    }).pipe(Effect.provideService(TaskStore, store), Effect.provideService(Transport, network.transport))
    network.addTracker(tracker)
    network.setOwner(instanceId, () => {})
    if (options.onProgress) tracker.onProgress(options.onProgress)
    const workers: WorkerHandle[] = []
    const count = Math.max(1, options.workers ?? 4)
    for (let i = 0; i < count; i++) {
      const worker = yield* startWorker({
        id: i === 0 ? localWorkerId : `worker-${i}`,
        slots: options.slots ?? 16,
        jobs: (name) => (name === job.name ? job : undefined),
        connect: network.link,
        heartbeatInterval: config.heartbeatInterval
      })
      network.addWorker(worker)
      workers.push(worker)
      yield* Effect.ignore(worker.join(instanceId))
    }
    const result = Effect.gen(function* () {
      const outcome = yield* tracker.outcome
      return { instanceId, ok: outcome.ok, result: parsed(outcome.result), outcome, progress: yield* tracker.progress }
    })
    return {
      instanceId,
      tracker,
      workers,
      config,
      progress: tracker.progress,
      kill: (reason) => Effect.ignore(tracker.kill(null, reason)),
      result
    }
  })

/** Runs one instance of `job` on in-process workers and returns its outcome. */
export const runJobEffect = (job: Job, options: RunOptions = {}): Effect.Effect<RunResult, ConfigError> =>
  Effect.scoped(Effect.flatMap(startJob(job, options), (handle) => Effect.tap(handle.result, () => handle.tracker.released)))

/** Promise form of runJobEffect, for code that does not use Effect. */
export const runJob = (job: Job, options: RunOptions = {}): Promise<RunResult> => Effect.runPromise(runJobEffect(job, options))
