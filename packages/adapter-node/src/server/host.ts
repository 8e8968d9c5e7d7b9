import {
  defaultConfig,
  RejectedError,
  resolveConfig,
  TransportError,
  type Outcome,
  type Progress,
  type StoreError
} from "@taskfold/core"
import {
  finishedTracker,
  directLink,
  resumeTracker,
  startTracker,
  startWorker,
  TaskStore,
  Transport,
  type Heartbeat,
  type TaskStoreShape,
  type Tracker,
  type TrackerLink,
  type TransportShape,
  type WorkerHandle,
  type Executor
} from "@taskfold/core/adapter"
import { httpWorkerTransport, type SubmitRequest, type TrackerHost, type WorkerRegistration } from "@taskfold/core/wire"
import { Effect, Exit, Scope } from "effect"
import type { JobTable } from "../jobs.ts"
import { memoryOutcomeLog, type OutcomeLog } from "./outcomes.ts"

/** The id of the worker inside the tracker server, which runs every instance's root and final task. */
export const LOCAL_WORKER_ID = "local"

export interface TrackerServerOptions {
  /** The shared secret; the server sends it to worker processes too. */
  readonly token: string
  /** The jobs instances can be submitted for; the local worker runs their root and final tasks. */
  readonly jobs: JobTable
  readonly store: TaskStoreShape
  /** Where outcomes are kept after release; memory by default. */
  readonly outcomes?: OutcomeLog
  /** Slots of the local worker. Default 4. */
  readonly localSlots?: number
  /** Where the local worker runs processors (a thread pool); by default in this thread. */
  readonly executor?: Executor
  /** How long a registration counts without being renewed, in ms. Default 30 s. */
  readonly registrationTtl?: number
  /** Per request to a worker process, in ms. Default 5 s: a hung worker must not hold a tracker long. */
  readonly sendTimeoutMs?: number
  readonly fetch?: (input: string, init: RequestInit) => Promise<Response>
  /** Which stored instances to resume on start (R-REC-1); all by default. */
  readonly resume?: (instanceId: string, job: string) => boolean
  /** One line per notable event (instance started, resumed, finished; worker registered). */
  readonly log?: (line: string) => void
}

interface LiveInstance {
  readonly id: string
  readonly job: string
  readonly tracker: Tracker
  /** What the HTTP app is given: the tracker, noting which workers heartbeat. */
  readonly exposed: Tracker
  readonly scope: Scope.Closeable
  /** Workers the tracker has heard of, from their heartbeats or an introduction. */
  readonly known: Set<string>
}

interface RegisteredWorker {
  readonly id: string
  url: string
  slots: number
  jobs: ReadonlySet<string>
  renewedAt: number
}

export interface TrackerServer {
  /** For makeTrackerApp. */
  readonly host: TrackerHost
  /** Ids of the live instances. */
  readonly instances: () => ReadonlyArray<string>
  /** Instances resumed from the store when the server started (R-REC-1). */
  readonly resumed: ReadonlyArray<string>
  readonly tracker: (instanceId: string) => Tracker | undefined
  /** The outcome of an instance, live (once decided) or finished. */
  readonly outcome: (instanceId: string) => Outcome | undefined
  readonly localWorker: WorkerHandle
}

const unknownInstance = (instanceId: string) =>
  new RejectedError({ reason: "unknown-instance", message: `no live instance ${instanceId}` })

const httpUrl = (text: string): boolean => {
  try {
    const url = new URL(text)
    return url.protocol === "http:" || url.protocol === "https:"
  } catch {
    return false
  }
}

/**
 * Hosts many instances in one process: submit starts a tracker for a job this server knows, worker
 * processes register where they listen, the local worker in this process runs root and final tasks,
 * and outcomes stay queryable after the trackers let go. On start every instance left in the store is
 * resumed (R-REC-1). Closing the scope closes every tracker; the store keeps their state.
 */
export const makeTrackerServer = (
  options: TrackerServerOptions
): Effect.Effect<TrackerServer, StoreError, Scope.Scope> =>
  Effect.gen(function* () {
    const { jobs, store } = options
    const log = options.log ?? (() => {})
    const outcomes = options.outcomes ?? memoryOutcomeLog()
    const ttl = options.registrationTtl ?? 30_000
    const live = new Map<string, LiveInstance>()
    /** Ids reserved by a submit whose tracker is being started. */
    const starting = new Set<string>()
    const registry = new Map<string, RegisteredWorker>()
    const heartbeatInterval = Math.min(
      defaultConfig.heartbeatInterval,
      ...[...jobs.values()].map((job) => job.config?.heartbeatInterval ?? Infinity)
    )

    const localLink = (instanceId: string): TrackerLink =>
      directLink(
        Effect.suspend(() => {
          const entry = live.get(instanceId)
          return entry === undefined ? Effect.fail(unknownInstance(instanceId)) : Effect.succeed(entry.tracker)
        })
      )

    const localWorker = yield* startWorker({
      id: LOCAL_WORKER_ID,
      slots: options.localSlots ?? 4,
      jobs: (name) => jobs.get(name),
      connect: localLink,
      heartbeatInterval,
      ...(options.executor === undefined ? {} : { executor: options.executor })
    }).pipe(Effect.orDie)

    const deliverOutcome = (instanceId: string, outcome: Outcome): Effect.Effect<void, TransportError> =>
      Effect.gen(function* () {
        const entry = live.get(instanceId)
        const progress: Progress =
          entry === undefined
            ? { instanceId, at: outcome.finishedAt, byName: {}, byWorker: {}, outcome }
            : yield* entry.tracker.progress
        yield* Effect.try({
          try: () => outcomes.put({ instanceId, job: entry?.job ?? "", outcome, progress: { ...progress, outcome } }),
          catch: (error) =>
            new TransportError({
              reason: "closed",
              message: `cannot keep the outcome of ${instanceId}: ${String(error)}`
            })
        })
        log(
          `instance ${instanceId} ${outcome.ok ? "succeeded" : "failed"}: ${outcome.result.length > 200 ? `${outcome.result.slice(0, 200)}…` : outcome.result}`
        )
      })

    const remote = httpWorkerTransport({
      token: options.token,
      fetch: options.fetch ?? globalThis.fetch,
      timeoutMs: options.sendTimeoutMs ?? 5_000,
      workerUrl: (workerId) => registry.get(workerId)?.url,
      deliverOutcome
    })
    const transport: TransportShape = {
      send: (workerId, batch) =>
        workerId === LOCAL_WORKER_ID
          ? Effect.suspend(() => {
              const refused = localWorker.deliver(batch)
              return refused === undefined
                ? Effect.void
                : Effect.fail(new TransportError({ reason: "rejected", message: refused.message }))
            })
          : remote.send(workerId, batch),
      stop: (workerId, message) =>
        workerId === LOCAL_WORKER_ID ? Effect.sync(() => localWorker.stop(message)) : remote.stop(workerId, message),
      deliverOutcome
    }

    /**
     * A registered worker becomes a candidate of an instance as if it had heartbeated (R-WORK-5), so the
     * instance sends it work at once; its own heartbeats follow, since a batch makes it join.
     */
    const introduce = (entry: LiveInstance, worker: RegisteredWorker): void => {
      if (entry.known.has(worker.id) || !worker.jobs.has(entry.job)) return
      entry.known.add(worker.id)
      const heartbeat: Heartbeat = {
        instanceId: entry.id,
        workerId: worker.id,
        slots: worker.slots,
        freeSlots: worker.slots,
        queueLength: 0,
        idle: false
      }
      Effect.runFork(Effect.ignore(entry.tracker.heartbeat(heartbeat)))
    }

    const fresh = (worker: RegisteredWorker) => Date.now() - worker.renewedAt <= ttl

    /** Starts hosting a tracker: the local worker joins, registered workers are introduced, release ends it. */
    const host = <E>(
      id: string,
      job: string,
      make: Effect.Effect<Tracker, E, TaskStore | Transport | Scope.Scope>
    ): Effect.Effect<Tracker, E> =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const exit = yield* Effect.exit(
          make.pipe(
            Effect.provideService(TaskStore, store),
            Effect.provideService(Transport, transport),
            Scope.provide(scope)
          )
        )
        if (Exit.isFailure(exit)) {
          yield* Scope.close(scope, exit)
          return yield* exit
        }
        const tracker = exit.value
        const known = new Set<string>([LOCAL_WORKER_ID])
        const exposed: Tracker = {
          ...tracker,
          heartbeat: (heartbeat) => {
            known.add(heartbeat.workerId)
            return tracker.heartbeat(heartbeat)
          }
        }
        const entry: LiveInstance = { id, job, tracker, exposed, scope, known }
        live.set(id, entry)
        Effect.runFork(Effect.ignore(localWorker.join(id)))
        for (const worker of registry.values()) if (fresh(worker)) introduce(entry, worker)
        Effect.runFork(
          tracker.released.pipe(
            Effect.andThen(Effect.sync(() => live.delete(id))),
            Effect.andThen(Scope.close(scope, Exit.void))
          )
        )
        return tracker
      })

    // Resume what the store holds before anyone can talk to this server (R-REC-1).
    const resumed: string[] = []
    for (const id of yield* store.listInstances()) {
      const stored = yield* store.load(id)
      if (stored === undefined || options.resume?.(id, stored.instance.job) === false) continue
      if (!jobs.has(stored.instance.job))
        log(`warning: instance ${id} runs job ${stored.instance.job}, which this server does not know`)
      const resumedTracker = yield* Effect.result(host(id, stored.instance.job, resumeTracker(id, LOCAL_WORKER_ID)))
      if (resumedTracker._tag === "Failure") {
        log(`cannot resume instance ${id}: ${resumedTracker.failure.message}`)
        continue
      }
      resumed.push(id)
      log(`resumed instance ${id} (job ${stored.instance.job})`)
    }

    yield* Effect.addFinalizer(() =>
      Effect.forEach([...live.values()], (entry) => Scope.close(entry.scope, Exit.void), { discard: true }).pipe(
        Effect.andThen(Effect.sync(() => live.clear()))
      )
    )

    const trackerHost: TrackerHost = {
      tracker: (instanceId) =>
        Effect.suspend(() => {
          const entry = live.get(instanceId)
          if (entry !== undefined) return Effect.succeed(entry.exposed)
          const record = outcomes.get(instanceId)
          return record === undefined
            ? Effect.fail(unknownInstance(instanceId))
            : Effect.succeed(finishedTracker(record.instanceId, record.outcome, record.progress))
        }),

      submit: (request: SubmitRequest) =>
        Effect.gen(function* () {
          const job = jobs.get(request.job)
          if (job === undefined) {
            return yield* new RejectedError({
              reason: "bad-input",
              message: `unknown job ${JSON.stringify(request.job)}; this tracker knows ${[...jobs.keys()].map((name) => JSON.stringify(name)).join(", ")}`
            })
          }
          const given = request.instanceId
          // Submitting an id that exists starts nothing: a repeated submit is answered, not run twice.
          if (given !== undefined && (live.has(given) || starting.has(given) || outcomes.get(given) !== undefined))
            return { instanceId: given }
          const config = yield* resolveConfig({ ...job.config, ...request.config })
          const instanceId = given ?? `${job.name}-${globalThis.crypto.randomUUID()}`
          starting.add(instanceId)
          yield* host(
            instanceId,
            job.name,
            startTracker({
              instanceId,
              job: job.name,
              kind: job.kind,
              config,
              params: JSON.stringify(request.params ?? null),
              localWorkerId: LOCAL_WORKER_ID
            })
          ).pipe(Effect.ensuring(Effect.sync(() => starting.delete(instanceId))))
          log(`started instance ${instanceId} (job ${job.name})`)
          return { instanceId }
        }),

      registerWorker: (registration: WorkerRegistration) =>
        Effect.suspend(() => {
          if (registration.workerId === LOCAL_WORKER_ID) {
            return Effect.fail(
              new RejectedError({
                reason: "bad-input",
                message: `worker id ${LOCAL_WORKER_ID} is reserved for the tracker's own worker`
              })
            )
          }
          if (!httpUrl(registration.url)) {
            return Effect.fail(
              new RejectedError({
                reason: "bad-input",
                message: `url ${JSON.stringify(registration.url)} is not an http(s) URL`
              })
            )
          }
          let worker = registry.get(registration.workerId)
          const isNew = worker === undefined || worker.url !== registration.url
          if (worker === undefined) {
            worker = {
              id: registration.workerId,
              url: registration.url,
              slots: registration.slots,
              jobs: new Set(registration.jobs),
              renewedAt: Date.now()
            }
            registry.set(worker.id, worker)
          } else {
            worker.url = registration.url
            worker.slots = registration.slots
            worker.jobs = new Set(registration.jobs)
            worker.renewedAt = Date.now()
          }
          if (isNew) log(`worker ${worker.id} registered at ${worker.url} (${worker.slots} slots)`)
          const instances: string[] = []
          for (const entry of live.values()) {
            if (!worker.jobs.has(entry.job)) continue
            introduce(entry, worker)
            instances.push(entry.id)
          }
          return Effect.succeed({ instances })
        })
    }

    return {
      host: trackerHost,
      instances: () => [...live.keys()],
      resumed,
      tracker: (instanceId) => live.get(instanceId)?.tracker,
      outcome: (instanceId) => outcomes.get(instanceId)?.outcome,
      localWorker
    }
  })
