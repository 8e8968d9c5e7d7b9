/**
 * One page's cluster: the trackers of its instances and its own local worker in the page, a pool of
 * Web Workers, and a durable TaskStore (IndexedDB). After a reload, `resumeAll` picks up every stored
 * instance where it stopped (R-REC-1).
 */
import { Effect, type Scope } from "effect"
import {
  ConfigError,
  defaultConfig,
  type Job,
  type JobConfigOverrides,
  type RejectedError,
  type StoreError,
  type TransportError
} from "@taskfold/core"
import {
  makeTrackerHost,
  type StartRequest,
  type TaskStoreShape,
  type Tracker,
  type TrackerHost,
  type WorkerHandle
} from "@taskfold/core/adapter"
import {
  makeWebWorkerNetwork,
  type OutcomeOwner,
  type RemoteWorker,
  type WebWorkerNetwork,
  type WorkerLike
} from "@taskfold/core/wire"

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
  /** Core's host of the page's instances: list, status, kill, subscribe. */
  readonly host: TrackerHost
  /** Resumes every stored instance that has no tracker in this page yet; returns their trackers. */
  readonly resumeAll: () => Effect.Effect<ReadonlyArray<Tracker>, StoreError>
}

export const startBrowserCluster = (
  options: BrowserClusterOptions
): Effect.Effect<BrowserCluster, TransportError, Scope.Scope> =>
  Effect.gen(function* () {
    const network = makeWebWorkerNetwork()
    const heartbeatInterval = options.heartbeatInterval ?? defaultConfig.heartbeatInterval
    const prefix = options.workerIdPrefix ?? "web-"
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
    // Core's host runs the trackers and the page's own worker; the Web Workers are its remote workers.
    const host = yield* makeTrackerHost({
      jobs: options.jobs,
      store: options.store,
      local: { id: options.localWorkerId ?? "page", slots: options.localSlots ?? 2 },
      remote: network.transport,
      resume: false,
      ...(options.onOutcome === undefined ? {} : { onOutcome: options.onOutcome }),
      // Web Workers first, the page's own worker (joined by the host) last: all are known when the root maps.
      onStarted: ({ tracker }) =>
        Effect.gen(function* () {
          trackers.set(tracker.instanceId, tracker)
          network.addTracker(tracker)
          yield* Effect.forkDetach(
            tracker.released.pipe(
              Effect.andThen(
                Effect.sync(() => {
                  trackers.delete(tracker.instanceId)
                  network.removeTracker(tracker.instanceId)
                })
              )
            )
          )
          yield* Effect.forEach(workers, (worker) => Effect.ignore(worker.join(tracker.instanceId)), {
            concurrency: "unbounded",
            discard: true
          })
        })
    }).pipe(Effect.orDie)

    return {
      network,
      store: options.store,
      workers,
      local: host.localWorker!,
      trackers,
      host,
      start: (job, start = {}) =>
        host.start(job, start as StartRequest).pipe(
          Effect.catchTag("RejectedError", (error) =>
            Effect.fail(new ConfigError({ reason: "invalid-job", message: error.message }))
          ),
          Effect.orDie
        ),
      resume: host.resume,
      resumeAll: () => Effect.map(host.resumeAll(), (ids) => ids.flatMap((id) => host.live(id)?.tracker ?? []))
    }
  })
