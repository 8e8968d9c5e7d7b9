/**
 * One page's cluster: the trackers of its instances and its own local worker in the page, a pool of
 * Web Workers, and a durable TaskStore (IndexedDB). After a reload, `resumeAll` picks up every stored
 * instance where it stopped (R-REC-1).
 */
import { Effect, Exit, Scope } from "effect"
import {
  ConfigError,
  defaultConfig,
  resolveConfig,
  type Job,
  type JobConfigOverrides,
  type RejectedError,
  type StoreError,
  type TransportError
} from "@taskfold/core"
import {
  resumeTracker,
  startTracker,
  startWorker,
  TaskStore,
  Transport,
  type TaskStoreShape,
  type Tracker,
  type WorkerHandle
} from "@taskfold/core/adapter"
import { makeWebWorkerNetwork, type OutcomeOwner, type RemoteWorker, type WebWorkerNetwork } from "./network.ts"
import type { WorkerLike } from "./protocol.ts"

/** One Web Worker per logical core the browser reports, at least 2 and at most 16. */
export const defaultPoolSize = (): number => {
  const cores = typeof navigator === "undefined" ? 0 : navigator.hardwareConcurrency || 0
  return Math.min(16, Math.max(2, cores))
}

export interface BrowserClusterOptions {
  readonly store: TaskStoreShape
  /** The jobs the page's own worker can run: root and final tasks run there (R-DISP-4). */
  readonly jobs: ReadonlyArray<Job>
  /** Creates the index-th Web Worker; its script calls `serveWebWorker` with the same jobs. */
  readonly createWorker: (index: number) => WorkerLike
  /** Web Workers in the pool. Default: defaultPoolSize(), from navigator.hardwareConcurrency. */
  readonly workers?: number
  /** Slots per Web Worker. Default 4. */
  readonly slots?: number
  /** Slots of the page's own worker. Default 2. */
  readonly localSlots?: number
  /** Milliseconds between heartbeats; keep it below the jobs' workerTimeout. Default 5 s. */
  readonly heartbeatInterval?: number
  /**
   * The page's own worker's id. Keep it, and the Web Workers' ids, the same across reloads: a resumed
   * tracker then learns at the first heartbeat that the tasks placed on them before the reload are gone
   * (R-WORK-3), instead of waiting for them to time out.
   */
  readonly localWorkerId?: string
  /** Web Worker ids are this prefix and 1, 2, …. Default "web-". */
  readonly workerIdPrefix?: string
  /** Receives every instance's outcome; the tracker re-sends it until this returns (R-FIN-6). */
  readonly onOutcome?: OutcomeOwner
}

export interface StartOptions {
  readonly params?: unknown
  readonly config?: JobConfigOverrides
  readonly instanceId?: string
}

export interface BrowserCluster {
  readonly network: WebWorkerNetwork
  readonly store: TaskStoreShape
  readonly workers: ReadonlyArray<RemoteWorker>
  readonly local: WorkerHandle
  /** The trackers running in this page, by instance id, until they are released. */
  readonly trackers: ReadonlyMap<string, Tracker>
  /** Starts a new instance of `job` and joins every worker to it. */
  readonly start: (job: Job, options?: StartOptions) => Effect.Effect<Tracker, ConfigError>
  /** Resumes one stored instance (R-REC-1). */
  readonly resume: (instanceId: string) => Effect.Effect<Tracker, RejectedError | StoreError>
  /** Resumes every stored instance that has no tracker in this page yet; returns their trackers. */
  readonly resumeAll: () => Effect.Effect<ReadonlyArray<Tracker>, StoreError>
}

export const startBrowserCluster = (
  options: BrowserClusterOptions
): Effect.Effect<BrowserCluster, TransportError, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Scope.Scope
    const network = makeWebWorkerNetwork()
    if (options.onOutcome) network.setOwner(options.onOutcome)
    const heartbeatInterval = options.heartbeatInterval ?? defaultConfig.heartbeatInterval
    const localWorkerId = options.localWorkerId ?? "page"
    const prefix = options.workerIdPrefix ?? "web-"
    const jobs = (name: string) => options.jobs.find((job) => job.name === name)
    const trackers = new Map<string, Tracker>()

    const count = Math.max(1, options.workers ?? defaultPoolSize())
    const workers = yield* Effect.forEach(
      Array.from({ length: count }, (_, i) => i),
      (i) =>
        network.spawn({
          id: `${prefix}${i + 1}`,
          create: () => options.createWorker(i),
          slots: options.slots ?? 4,
          heartbeatInterval
        }),
      { concurrency: "unbounded" }
    )
    const local = yield* startWorker({
      id: localWorkerId,
      slots: options.localSlots ?? 2,
      jobs,
      connect: network.link,
      heartbeatInterval
    }).pipe(Effect.orDie)
    network.addLocalWorker(local)

    /** Runs a tracker in its own scope inside the cluster's; once released it leaves the page. */
    const adopt = (make: Effect.Effect<Tracker, RejectedError | StoreError, TaskStore | Transport | Scope.Scope>) =>
      Effect.gen(function* () {
        const own = yield* Scope.fork(scope)
        const exit = yield* make.pipe(
          Effect.provideService(TaskStore, options.store),
          Effect.provideService(Transport, network.transport),
          Scope.provide(own),
          Effect.exit
        )
        if (Exit.isFailure(exit)) {
          yield* Scope.close(own, Exit.void)
          return yield* exit
        }
        const tracker = exit.value
        trackers.set(tracker.instanceId, tracker)
        network.addTracker(tracker)
        yield* Effect.forkIn(
          tracker.released.pipe(
            Effect.andThen(
              Effect.sync(() => {
                trackers.delete(tracker.instanceId)
                network.removeTracker(tracker.instanceId)
              })
            ),
            Effect.andThen(Scope.close(own, Exit.void))
          ),
          scope
        )
        // Web Workers first, the page's own worker last, so every worker is known when the root maps.
        yield* Effect.forEach(workers, (worker) => Effect.ignore(worker.join(tracker.instanceId)), {
          concurrency: "unbounded",
          discard: true
        })
        yield* Effect.ignore(local.join(tracker.instanceId))
        return tracker
      })

    const cluster: BrowserCluster = {
      network,
      store: options.store,
      workers,
      local,
      trackers,
      start: (job, start = {}) =>
        Effect.gen(function* () {
          if (jobs(job.name) !== job) {
            return yield* new ConfigError({
              reason: "invalid-job",
              message: `job ${JSON.stringify(job.name)} is not among the cluster's jobs`
            })
          }
          const config = yield* resolveConfig({ ...job.config, ...start.config })
          return yield* adopt(
            startTracker({
              instanceId: start.instanceId ?? `${job.name}-${globalThis.crypto.randomUUID()}`,
              job: job.name,
              kind: job.kind,
              config,
              params: JSON.stringify(start.params ?? null),
              localWorkerId
            })
          ).pipe(Effect.orDie)
        }),
      resume: (instanceId) => adopt(resumeTracker(instanceId, localWorkerId)),
      resumeAll: () =>
        Effect.gen(function* () {
          const ids = yield* options.store.listInstances()
          const resumed: Tracker[] = []
          for (const id of ids) {
            if (trackers.has(id)) continue
            const exit = yield* Effect.exit(cluster.resume(id))
            if (Exit.isSuccess(exit)) resumed.push(exit.value)
            else yield* Effect.logWarning(`instance ${id} could not be resumed`, exit.cause)
          }
          return resumed
        })
    }
    return cluster
  })
