import { Effect, type Scope } from "effect"
import { directLink, makeMemoryNetwork } from "../memory/transport.ts"
import { makeMemoryStore } from "../memory/store.ts"
import { resolveConfig, type JobConfig, type JobConfigOverrides } from "../model/config.ts"
import { ConfigError } from "../model/errors.ts"
import { idProblem } from "../model/id.ts"
import { MAX_SLOTS } from "../model/messages.ts"
import { safeJson } from "../model/task-error.ts"
import type { Executor } from "../worker/execute.ts"
import type { Outcome, Progress } from "../model/instance.ts"
import type { TaskStoreShape } from "../ports/task-store.ts"
import type { Tracker } from "../tracker/tracker.ts"
import { makeTrackerHost, type TrackerHost } from "../host/host.ts"
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

/** Starts an instance of `job` on in-process workers, hosted by core's TrackerHost; it lives as long as the scope. */
export const startJob = (job: Job, options: RunOptions = {}): Effect.Effect<JobHandle, ConfigError, Scope.Scope> =>
  Effect.gen(function* () {
    const problem = checkRunOptions(job, options)
    if (problem !== undefined) return yield* problem
    const config = yield* resolveConfig({ ...job.config, ...options.config })
    const network = makeMemoryNetwork()
    const slots = options.slots ?? 16
    const executor = options.executor === undefined ? {} : { executor: options.executor }
    let host: TrackerHost | undefined
    const connect = (instanceId: string) =>
      directLink(Effect.suspend(() => (host === undefined ? Effect.die("no host yet") : host.tracker(instanceId))))
    const workers: WorkerHandle[] = []
    for (let i = 1; i < (options.workers ?? 4); i++) {
      const worker = yield* startWorker({
        id: `worker-${i}`,
        slots,
        jobs: (name) => (name === job.name ? job : undefined),
        connect,
        heartbeatInterval: config.heartbeatInterval,
        ...executor
      })
      network.addWorker(worker)
      workers.push(worker)
    }
    host = yield* makeTrackerHost({
      jobs: [job],
      store: options.store ?? makeMemoryStore(),
      local: { id: "local", slots, ...executor },
      remote: network.transport,
      resume: false,
      // The other workers join first, the local one last: every worker is known when the root maps.
      onStarted: (instance) =>
        Effect.forEach(workers, (worker) => Effect.ignore(worker.join(instance.instanceId)), { discard: true })
    }).pipe(Effect.orDie)
    const tracker = yield* host
      .start(job, {
        params: (options.params ?? null) as never,
        config: options.config ?? {},
        ...(options.instanceId === undefined ? {} : { instanceId: options.instanceId })
      })
      .pipe(
        Effect.catchTag("RejectedError", (error) => Effect.fail(invalid(error.message))),
        Effect.catchTag("StoreError", (error) => Effect.die(error))
      )
    if (options.onProgress) tracker.onProgress(options.onProgress)
    const result = Effect.gen(function* () {
      const outcome = yield* tracker.outcome
      return {
        instanceId: tracker.instanceId,
        ok: outcome.ok,
        result: parsed(outcome.result),
        outcome,
        progress: yield* tracker.progress
      }
    })
    return {
      instanceId: tracker.instanceId,
      tracker,
      workers: [host.localWorker!, ...workers],
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
