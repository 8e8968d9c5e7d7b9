import { Effect, type Scope } from "effect"
import { makeMemoryNetwork } from "../memory/transport.ts"
import { makeMemoryStore } from "../memory/store.ts"
import { resolveConfig, type JobConfig, type JobConfigOverrides } from "../model/config.ts"
import { ConfigError } from "../model/errors.ts"
import { idProblem } from "../model/id.ts"
import { MAX_SLOTS } from "../model/messages.ts"
import { safeJson } from "../model/task-error.ts"
import type { Executor } from "../worker/execute.ts"
import type { Outcome, Progress } from "../model/instance.ts"
import { TaskStore, type TaskStoreShape } from "../ports/task-store.ts"
import { Transport } from "../ports/transport.ts"
import { startTracker, type Tracker } from "../tracker/tracker.ts"
import { startWorker, type WorkerHandle } from "../worker/runtime.ts"
import type { Job } from "../model/job.ts"

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
  /**
   * Runs the processors of the in-process workers elsewhere, e.g. on Node's worker threads
   * (`threadPool` of @taskfold/node); by default they run in this thread.
   */
  readonly executor?: Executor
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

const invalid = (message: string) => new ConfigError({ reason: "invalid-config", message })

const wholeNumber = (value: unknown, name: string, max: number): ConfigError | undefined =>
  value === undefined || (typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= max)
    ? undefined
    : invalid(`${name} must be a whole number from 1 to ${max}, not ${safeJson(value)}`)

/** Checks what runJob and startJob are given; a bad option is a ConfigError and starts nothing. */
const checkRunOptions = (job: unknown, options: RunOptions): ConfigError | undefined => {
  if (
    job === null ||
    typeof job !== "object" ||
    typeof (job as Job).name !== "string" ||
    typeof (job as Job).process !== "function"
  ) {
    return new ConfigError({ reason: "invalid-job", message: "runJob needs a job made by defineJob" })
  }
  if (options === null || typeof options !== "object") return invalid("runJob's options must be an object")
  const problem = wholeNumber(options.workers, "workers", 1_024) ?? wholeNumber(options.slots, "slots", MAX_SLOTS)
  if (problem !== undefined) return problem
  if (options.instanceId !== undefined) {
    const idIssue = typeof options.instanceId === "string" ? idProblem(options.instanceId) : "an id must be a string"
    if (idIssue !== undefined) return invalid(`instanceId: ${idIssue}`)
  }
  try {
    JSON.stringify(options.params ?? null)
  } catch (error) {
    return invalid(`params must be JSON: ${error instanceof Error ? error.message : safeJson(error)}`)
  }
  return undefined
}

/** Starts an instance of `job` on in-process workers; it lives as long as the scope. */
export const startJob = (job: Job, options: RunOptions = {}): Effect.Effect<JobHandle, ConfigError, Scope.Scope> =>
  Effect.gen(function* () {
    const problem = checkRunOptions(job, options)
    if (problem !== undefined) return yield* problem
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
    const count = options.workers ?? 4
    for (let i = 0; i < count; i++) {
      const worker = yield* startWorker({
        id: i === 0 ? localWorkerId : `worker-${i}`,
        slots: options.slots ?? 16,
        jobs: (name) => (name === job.name ? job : undefined),
        connect: network.link,
        heartbeatInterval: config.heartbeatInterval,
        ...(options.executor === undefined ? {} : { executor: options.executor })
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
  Effect.scoped(
    Effect.flatMap(startJob(job, options), (handle) => Effect.tap(handle.result, () => handle.tracker.released))
  )

/** Promise form of runJobEffect, for code that does not use Effect. */
export const runJob = (job: Job, options: RunOptions = {}): Promise<RunResult> =>
  Effect.runPromise(runJobEffect(job, options))
