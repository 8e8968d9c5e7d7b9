/**
 * Shared set-up for the integration tests: one tracker and in-process workers on a memory network,
 * built the way api/run.ts builds them, but with every part reachable so a test can wrap the store,
 * the transport or a worker's link, stop the tracker or cut a worker off.
 */
import { Deferred, Effect, Exit, Scope } from "effect"
import {
  resolveConfig,
  type ConfigError,
  type Job,
  type JobConfig,
  type JobConfigOverrides,
  type Outcome,
  type Progress,
  TransportError
} from "../src/index.ts"
import {
  makeMemoryNetwork,
  makeMemoryStore,
  startTracker,
  startWorker,
  TaskStore,
  Transport,
  type MemoryNetwork,
  type PullRequest,
  type TaskStoreShape,
  type Tracker,
  type TrackerLink,
  type TransportShape,
  type WorkerHandle
} from "../src/adapter.ts"

export const LOCAL = "local"

export type MemoryStore = ReturnType<typeof makeMemoryStore>

export interface ClusterOptions {
  /** The job, or one job object per worker (a closure that knows which worker runs it). */
  readonly job: Job | ((workerId: string) => Job)
  /** Workers including the local one. Default 3. */
  readonly workers?: number
  readonly slots?: number
  readonly config?: JobConfigOverrides
  readonly params?: unknown
  readonly instanceId?: string
  readonly store?: TaskStoreShape
  /** Wraps the memory transport the tracker uses. */
  readonly transport?: (base: TransportShape) => TransportShape
  /** Wraps the link a worker uses to reach the tracker. */
  readonly link?: (workerId: string, base: TrackerLink) => TrackerLink
  /** The instance's owner; acknowledges at once by default. */
  readonly owner?: (outcome: Outcome) => void
  /** Registered before any worker joins, so no progress push is missed. */
  readonly onProgress?: (progress: Progress) => void
}

export interface RunningWorker {
  readonly handle: WorkerHandle
  readonly scope: Scope.Closeable
}

export interface Cluster {
  readonly instanceId: string
  readonly config: JobConfig
  readonly network: MemoryNetwork
  readonly transport: TransportShape
  readonly store: TaskStoreShape
  readonly tracker: Tracker
  readonly trackerScope: Scope.Closeable
  readonly workers: Map<string, RunningWorker>
  /** Starts one more worker (in its own scope), adds it to the network and joins it. */
  readonly addWorker: (id: string) => Effect.Effect<WorkerHandle, never, Scope.Scope>
}

const jobOf = (job: ClusterOptions["job"], workerId: string): Job => (typeof job === "function" ? job(workerId) : job)
const jobName = (job: ClusterOptions["job"]): string => jobOf(job, LOCAL).name
const jobKind = (job: ClusterOptions["job"]) => jobOf(job, LOCAL).kind

/**
 * Starts the tracker in its own scope (closing it is a tracker crash) and the workers, each in its own
 * scope. Remote workers join first, the local one last, so every worker is known when the root runs.
 */
export const startCluster = (options: ClusterOptions): Effect.Effect<Cluster, ConfigError, Scope.Scope> =>
  Effect.gen(function* () {
    const job = options.job
    const config = yield* resolveConfig({ ...jobOf(job, LOCAL).config, ...options.config })
    const network = makeMemoryNetwork()
    const store = options.store ?? makeMemoryStore()
    const transport = options.transport ? options.transport(network.transport) : network.transport
    const instanceId = options.instanceId ?? `${jobName(job)}-${globalThis.crypto.randomUUID()}`
    const outer = yield* Scope.Scope
    const trackerScope = yield* Scope.fork(outer)
    const tracker = yield* startTracker({
      instanceId,
      job: jobName(job),
      kind: jobKind(job),
      config,
      params: JSON.stringify(options.params ?? null),
      localWorkerId: LOCAL
    }).pipe(
      Effect.provideService(TaskStore, store),
      Effect.provideService(Transport, transport),
      Scope.provide(trackerScope)
    )
    if (options.onProgress) tracker.onProgress(options.onProgress)
    network.addTracker(tracker)
    network.setOwner(instanceId, options.owner ?? (() => {}))
    const workers = new Map<string, RunningWorker>()

    const addWorker = (id: string): Effect.Effect<WorkerHandle, never, Scope.Scope> =>
      Effect.gen(function* () {
        const scope = yield* Scope.fork(yield* Scope.Scope)
        const handle = yield* startWorker({
          id,
          slots: options.slots ?? 8,
          jobs: (name) => {
            const found = jobOf(job, id)
            return found.name === name ? found : undefined
          },
          connect: (instance) => (options.link ? options.link(id, network.link(instance)) : network.link(instance)),
          heartbeatInterval: config.heartbeatInterval
        }).pipe(Scope.provide(scope), Effect.orDie)
        network.addWorker(handle)
        workers.set(id, { handle, scope })
        yield* Effect.ignore(handle.join(instanceId))
        return handle
      })

    const count = Math.max(1, options.workers ?? 3)
    for (let i = 1; i < count; i++) yield* addWorker(`worker-${i}`)
    yield* addWorker(LOCAL)
    return { instanceId, config, network, transport, store, tracker, trackerScope, workers, addWorker }
  })

/** Closes a scope started by startCluster (a crash of what lives in it). */
export const closeScope = (scope: Scope.Closeable) => Scope.close(scope, Exit.void)

/** Polls `condition` every 2 ms; fails the test with `what` after `timeoutMs`. */
export const waitUntil = (condition: () => boolean, what: string, timeoutMs = 5_000): Effect.Effect<void> =>
  Effect.gen(function* () {
    const until = Date.now() + timeoutMs
    while (!condition()) {
      if (Date.now() > until) return yield* Effect.die(new Error(`timed out waiting for: ${what}`))
      yield* Effect.sleep(2)
    }
  })

/** The outcome, or a test failure after `timeoutMs` (a tracker that never decides must not hang the suite). */
export const outcomeWithin = (tracker: Tracker, timeoutMs = 8_000): Effect.Effect<Outcome> =>
  tracker.outcome.pipe(
    Effect.timeoutOption(timeoutMs),
    Effect.flatMap((found) =>
      found._tag === "Some" ? Effect.succeed(found.value) : Effect.die(new Error(`no outcome within ${timeoutMs} ms`))
    )
  )

/** Resolves when `signal` aborts, with its reason. */
export const aborted = (signal: AbortSignal): Promise<unknown> =>
  new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason)
    else signal.addEventListener("abort", () => resolve(signal.reason), { once: true })
  })

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A link that fails every call with "unreachable" while `isCut()` holds: a network partition. */
export const cuttableLink = (base: TrackerLink, isCut: () => boolean): TrackerLink => {
  const guard = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E | TransportError> =>
    Effect.suspend(
      (): Effect.Effect<A, E | TransportError> =>
        isCut() ? Effect.fail(new TransportError({ reason: "unreachable", message: "partitioned" })) : effect
    )
  return {
    report: (batch) => guard(base.report(batch)),
    map: (request) => guard(base.map(request)),
    heartbeat: (heartbeat) => guard(base.heartbeat(heartbeat)),
    appendContext: (request) => guard(base.appendContext(request)),
    readResults: (run, afterSeq, limit) => guard(base.readResults(run, afterSeq, limit)),
    ...(base.pull === undefined ? {} : { pull: (request: PullRequest) => guard(base.pull!(request)) })
  }
}

/** Counts calls per key. */
export const counter = () => {
  const counts = new Map<string, number>()
  return {
    counts,
    add: (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1),
    get: (key: string) => counts.get(key) ?? 0
  }
}

/**
 * Links that behave like a real network when the tracker's process dies: calls in flight at the crash
 * fail with "closed" (a dropped connection) instead of waiting forever for an answer.
 */
export const crashableLinks = () => {
  let crash = Deferred.makeUnsafe<void>()
  const guard = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E | TransportError> =>
    Effect.suspend(() => {
      const current = crash
      return Effect.raceFirst(
        effect,
        Deferred.await(current).pipe(
          Effect.andThen(
            Effect.fail(new TransportError({ reason: "closed", message: "the tracker's process went away" }))
          )
        )
      )
    })
  return {
    /** Fails every call in flight now. */
    crash: () => {
      Deferred.doneUnsafe(crash, Effect.void)
      crash = Deferred.makeUnsafe<void>()
    },
    wrap: (base: TrackerLink): TrackerLink => ({
      report: (batch) => guard(base.report(batch)),
      map: (request) => guard(base.map(request)),
      heartbeat: (heartbeat) => guard(base.heartbeat(heartbeat)),
      appendContext: (request) => guard(base.appendContext(request)),
      readResults: (run, afterSeq, limit) => guard(base.readResults(run, afterSeq, limit)),
      ...(base.pull === undefined ? {} : { pull: (request: PullRequest) => guard(base.pull!(request)) })
    })
  }
}
