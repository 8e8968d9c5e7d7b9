import { Effect, Exit, Scope } from "effect"
import { directLink } from "../memory/transport.ts"
import { makeMemoryOutcomeLog } from "../memory/outcome-log.ts"
import { defaultConfig, resolveConfig, type JobConfig, type JobConfigOverrides } from "../model/config.ts"
import { RejectedError, TransportError, type ConfigError, type StoreError } from "../model/errors.ts"
import type { Outcome, Progress } from "../model/instance.ts"
import type { Job } from "../model/job.ts"
import type { StandingWorker } from "../machine/state.ts"
import type { SubmitRequest } from "../model/submit.ts"
import type { OutcomeLogShape, OutcomeRecord } from "../ports/outcome-log.ts"
import { TaskStore, type TaskStoreShape } from "../ports/task-store.ts"
import { Transport, type TransportShape } from "../ports/transport.ts"
import { finishedTracker } from "../tracker/finished.ts"
import { resumeTracker, startTracker, type Tracker, type TrackerHooks } from "../tracker/tracker.ts"
import type { Executor } from "../worker/execute.ts"
import { startWorker, type WorkerHandle } from "../worker/runtime.ts"
import { makeOnDemandWorker, type OnDemandWorker } from "./on-demand-worker.ts"
import { submitRefusal } from "./submit-limits.ts"
import { paramsProblem } from "../model/job-schemas.ts"

/** An instance the host runs now. */
export interface HostedInstance {
  readonly instanceId: string
  readonly job: string
  readonly config: JobConfig
  readonly tracker: Tracker
}

/** One line of `list`: live instances first, then finished ones from the outcome log, newest first. */
export interface InstanceSummary {
  readonly instanceId: string
  readonly job: string
  readonly state: "running" | "succeeded" | "failed"
}

export type StartRequest = Omit<SubmitRequest, "job">

export interface TrackerHostOptions {
  /** The jobs instances can be started for; the local worker runs their root and final tasks. */
  readonly jobs: ReadonlyArray<Job>
  readonly store: TaskStoreShape
  /** Where outcomes are kept after release (R-FIN-6); memory by default. */
  readonly outcomes?: OutcomeLogShape
  /** The worker in the host: root, final and broadcast preProcess run there (R-DISP-4). */
  readonly local?: {
    /** Default "local". Keep it across restarts: a resumed tracker knows its own worker (R-REC-1). */
    readonly id?: string
    /** Default 4. */
    readonly slots?: number
    readonly executor?: Executor
    /**
     * "resident" (default): always up, joining each instance with its own heartbeats. "on-demand": started
     * by a batch and stopped once it holds nothing, a standing worker of every instance (R-WORK-6).
     */
    readonly mode?: "resident" | "on-demand"
  }
  /** Sends to every worker that is not the local one (worker processes, Web Workers, lanes). */
  readonly remote?: Pick<TransportShape, "send" | "stop">
  /** Config under the job's own and the submitted: the deployment's defaults. */
  readonly config?: JobConfigOverrides
  /** The standing workers of an instance (R-WORK-6), from its config. */
  readonly standing?: (config: JobConfig) => ReadonlyArray<StandingWorker>
  /** Per-instance tracker hooks (a Durable Object's alarm takes the timer over). */
  readonly hooks?: (instanceId: string) => Pick<TrackerHooks, "onWake">
  /** Called once an instance runs, before the local worker joins: invite or join remote workers here. */
  readonly onStarted?: (instance: HostedInstance) => Effect.Effect<void> | void
  /** Called once an outcome is logged; a throw makes the tracker deliver it again (R-FIN-6). */
  readonly onOutcome?: (instanceId: string, outcome: Outcome) => void | Promise<void>
  /** Which stored instances to resume (R-REC-1): all by default; false resumes none until resumeAll. */
  readonly resume?: false | ((instanceId: string, job: string) => boolean)
  /** One line per notable event: instance started, resumed, finished. */
  readonly log?: (line: string) => void
  /**
   * Live instances (running or starting) past which submit refuses a new one (reason "too-many-instances"):
   * every live tracker holds memory and timers, and one credential must not be able to exhaust them.
   * Default 1000. `start` and resume are not held to it: they are the host's own code and its stored work.
   */
  readonly maxLiveInstances?: number
}

/**
 * Hosts many instances: submit starts a tracker for a job it knows (by id, once), the local worker runs
 * root and final tasks, outcomes stay queryable after the trackers let go, and on start every stored
 * instance is resumed (R-REC-1). What a runtime adds (an HTTP app, a Durable Object's alarm, Web Workers)
 * comes in through the options.
 */
export interface TrackerHost {
  /**
   * Starts an instance of a job by name; an id the host has already answers with itself (idempotent). This is
   * what an operator's request reaches (HTTP, `taskfold submit`, a Durable Object), so it is held to the job's
   * rules: config keys the job does not list in `overridable` are refused, limits that size memory and work
   * can only be lowered, `frequent` is never set (host/submit-limits.ts), and past `maxLiveInstances` live
   * instances a new one is refused. A refusal is a RejectedError and changes nothing.
   */
  readonly submit: (
    request: SubmitRequest
  ) => Effect.Effect<{ readonly instanceId: string }, RejectedError | ConfigError | StoreError>
  /**
   * The same for a job object, answering the instance's tracker. Unrestricted (any config key, no instance
   * cap): it is the job author's own code, as runJob and startJob are.
   */
  readonly start: (job: Job, request?: StartRequest) => Effect.Effect<Tracker, RejectedError | ConfigError | StoreError>
  /** A live instance's tracker, or a finished one's record as a tracker; unknown ids fail. */
  readonly tracker: (instanceId: string) => Effect.Effect<Tracker, RejectedError | StoreError>
  readonly live: (instanceId: string) => HostedInstance | undefined
  readonly instances: () => ReadonlyArray<HostedInstance>
  readonly list: (limit?: number) => Effect.Effect<ReadonlyArray<InstanceSummary>, StoreError>
  readonly status: (instanceId: string) => Effect.Effect<Progress, RejectedError | StoreError>
  readonly outcome: (instanceId: string) => Effect.Effect<Outcome | undefined, StoreError>
  readonly kill: (instanceId: string, reason: string) => Effect.Effect<void, RejectedError | StoreError>
  /** Every progress push of a live instance (R-PROG-2); returns the unsubscribe function. */
  readonly subscribe: (
    instanceId: string,
    listener: (progress: Progress) => void
  ) => Effect.Effect<() => void, RejectedError>
  /** Stops hosting a live instance without ending it: its tasks stay stored, a later resume goes on. */
  readonly release: (instanceId: string) => Effect.Effect<void>
  /** Resumes one stored instance (R-REC-1); a live one is answered as it is. */
  readonly resume: (instanceId: string) => Effect.Effect<Tracker, RejectedError | StoreError>
  /** Resumes every stored instance not live here yet; answers their ids (R-REC-1). */
  readonly resumeAll: () => Effect.Effect<ReadonlyArray<string>, StoreError>
  /** Instances resumed since the host started. */
  readonly resumed: () => ReadonlyArray<string>
  readonly localWorkerId: string
  /** The resident local worker (undefined when it runs on demand). */
  readonly localWorker: WorkerHandle | undefined
}

interface Entry extends HostedInstance {
  readonly scope: Scope.Closeable
}

const unknownInstance = (instanceId: string) =>
  new RejectedError({ reason: "unknown-instance", message: `no instance ${instanceId} here` })

const summaryOf = (record: OutcomeRecord): InstanceSummary => ({
  instanceId: record.instanceId,
  job: record.job,
  state: record.outcome.ok ? "succeeded" : "failed"
})

export const makeTrackerHost = (options: TrackerHostOptions): Effect.Effect<TrackerHost, StoreError, Scope.Scope> =>
  Effect.gen(function* () {
    const { store } = options
    const jobs = new Map(options.jobs.map((job) => [job.name, job]))
    const jobOf = (name: string) => jobs.get(name)
    const outcomes = options.outcomes ?? makeMemoryOutcomeLog()
    const log = options.log ?? (() => {})
    const localId = options.local?.id ?? "local"
    const localSlots = options.local?.slots ?? 4
    const executor = options.local?.executor === undefined ? {} : { executor: options.local.executor }
    const live = new Map<string, Entry>()
    /** Ids reserved by a start whose tracker is being made. */
    const starting = new Set<string>()
    const resumedIds: string[] = []
    const hostScope = yield* Scope.Scope

    const connect = (instanceId: string) =>
      directLink(
        Effect.suspend(() => {
          const entry = live.get(instanceId)
          return entry === undefined ? Effect.fail(unknownInstance(instanceId)) : Effect.succeed(entry.tracker)
        })
      )
    // One heartbeat pace for the local worker: the fastest any job asks for.
    const heartbeatInterval = Math.min(
      defaultConfig.heartbeatInterval,
      ...options.jobs.map((job) => job.config?.heartbeatInterval ?? Infinity)
    )
    const onDemand: OnDemandWorker | undefined =
      options.local?.mode === "on-demand"
        ? makeOnDemandWorker({ id: localId, slots: localSlots, jobs: jobOf, connect, heartbeatInterval, ...executor })
        : undefined
    const resident: WorkerHandle | undefined =
      onDemand === undefined
        ? yield* startWorker({
            id: localId,
            slots: localSlots,
            jobs: jobOf,
            connect,
            heartbeatInterval,
            ...executor
          }).pipe(Effect.orDie)
        : undefined
    if (onDemand !== undefined) yield* Effect.addFinalizer(() => Effect.sync(() => onDemand.close()))
    const localWorker = { deliver: (resident ?? onDemand)!.deliver, stop: (resident ?? onDemand)!.stop }

    const deliverOutcome = (instanceId: string, outcome: Outcome): Effect.Effect<void, TransportError> =>
      Effect.gen(function* () {
        const entry = live.get(instanceId)
        const progress: Progress =
          entry === undefined
            ? { instanceId, at: outcome.finishedAt, byName: {}, byWorker: {}, outcome }
            : yield* entry.tracker.progress
        yield* outcomes.put({ instanceId, job: entry?.job ?? "", outcome, progress: { ...progress, outcome } })
        if (options.onOutcome !== undefined) {
          const owner = options.onOutcome
          yield* Effect.tryPromise(async () => owner(instanceId, outcome))
        }
        const text = outcome.result.length > 200 ? `${outcome.result.slice(0, 200)}…` : outcome.result
        log(`instance ${instanceId} ${outcome.ok ? "succeeded" : "failed"}: ${text}`)
      }).pipe(
        Effect.mapError(
          (error) =>
            new TransportError({
              reason: "unreachable",
              message: `outcome of ${instanceId} not kept: ${error.message}`
            })
        )
      )

    const transport: TransportShape = {
      send: (workerId, batch) =>
        workerId === localId
          ? Effect.suspend(() => {
              const refused = localWorker.deliver(batch)
              return refused === undefined
                ? Effect.void
                : Effect.fail(new TransportError({ reason: "rejected", message: refused.message }))
            })
          : options.remote === undefined
            ? Effect.fail(new TransportError({ reason: "unreachable", message: `no worker ${workerId} here` }))
            : options.remote.send(workerId, batch),
      stop: (workerId, message) =>
        workerId === localId
          ? Effect.sync(() => localWorker.stop(message))
          : options.remote === undefined
            ? Effect.void
            : options.remote.stop(workerId, message),
      deliverOutcome
    }

    const hooksOf = (instanceId: string, config: JobConfig): TrackerHooks => {
      const standing = [
        ...(onDemand === undefined ? [] : [{ id: localId, slots: localSlots }]),
        ...(options.standing?.(config) ?? [])
      ]
      return { ...options.hooks?.(instanceId), ...(standing.length === 0 ? {} : { standing }) }
    }

    /** Runs a tracker in its own scope until it is released; the local worker joins it last. */
    const host = <E>(
      id: string,
      job: string,
      config: JobConfig,
      make: Effect.Effect<Tracker, E, TaskStore | Transport | Scope.Scope>
    ): Effect.Effect<Tracker, E> =>
      Effect.gen(function* () {
        const scope = yield* Scope.fork(hostScope)
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
        const entry: Entry = { instanceId: id, job, config, tracker, scope }
        live.set(id, entry)
        yield* Effect.forkIn(tracker.released.pipe(Effect.andThen(Effect.suspend(() => drop(entry)))), hostScope)
        const started = options.onStarted?.(entry)
        if (started !== undefined) yield* started
        if (resident !== undefined) yield* Effect.ignore(resident.join(id))
        return tracker
      })

    const drop = (entry: Entry): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (live.get(entry.instanceId) === entry) live.delete(entry.instanceId)
        return Scope.close(entry.scope, Exit.void)
      })

    const configOf = (job: Job, request: StartRequest) =>
      resolveConfig({ ...options.config, ...job.config, ...request.config })
    const maxLive = options.maxLiveInstances ?? 1_000
    /** The cap of submit, checked with no yield before the id is reserved, so concurrent submits cannot pass it. */
    const overCap = (): RejectedError | undefined =>
      live.size + starting.size < maxLive
        ? undefined
        : new RejectedError({
            reason: "too-many-instances",
            message:
              `this host runs ${live.size + starting.size} instances, its limit (maxLiveInstances ${maxLive}); ` +
              "submit again once some have finished"
          })

    /** Whether the host has this id anywhere: live, being started, stored or finished. */
    const has = (instanceId: string): Effect.Effect<boolean, StoreError> =>
      live.has(instanceId) || starting.has(instanceId)
        ? Effect.succeed(true)
        : Effect.gen(function* () {
            if ((yield* outcomes.get(instanceId)) !== undefined) return true
            return (yield* store.listInstances()).includes(instanceId)
          })

    const trackerOf = (instanceId: string): Effect.Effect<Tracker, RejectedError | StoreError> =>
      Effect.suspend(() => {
        const entry = live.get(instanceId)
        if (entry !== undefined) return Effect.succeed(entry.tracker)
        return Effect.flatMap(outcomes.get(instanceId), (record) =>
          record === undefined
            ? Effect.fail(unknownInstance(instanceId))
            : Effect.succeed(finishedTracker(record.instanceId, record.outcome, record.progress))
        )
      })

    /** Starts an instance; `admit` (submit's cap) may refuse it right before its id is reserved. */
    const begin = (job: Job, request: StartRequest, admit?: () => RejectedError | undefined) =>
      Effect.gen(function* () {
        if (jobOf(job.name) !== job) {
          return yield* new RejectedError({
            reason: "bad-input",
            message: `job ${JSON.stringify(job.name)} is not among the host's jobs`
          })
        }
        const given = request.instanceId
        // A repeated start starts nothing: the instance it names is answered, not run twice.
        if (given !== undefined && (yield* has(given))) {
          if (starting.has(given)) {
            return yield* new RejectedError({ reason: "bad-input", message: `instance ${given} is starting` })
          }
          return yield* trackerOf(given)
        }
        const config = yield* configOf(job, request)
        // Params that do not fit the job's schema start nothing (typed jobs, model/typed-job.ts).
        const badParams = paramsProblem(job, request.params ?? null)
        if (badParams !== undefined) return yield* new RejectedError({ reason: "bad-input", message: badParams })
        const refused = admit?.()
        if (refused !== undefined) return yield* refused
        const instanceId = given ?? `${job.name}-${globalThis.crypto.randomUUID()}`
        starting.add(instanceId)
        const tracker = yield* host(
          instanceId,
          job.name,
          config,
          startTracker({
            instanceId,
            job: job.name,
            kind: job.kind,
            config,
            params: JSON.stringify(request.params ?? null),
            localWorkerId: localId,
            ...hooksOf(instanceId, config)
          })
        ).pipe(Effect.ensuring(Effect.sync(() => starting.delete(instanceId))))
        log(`started instance ${instanceId} (job ${job.name})`)
        return tracker
      })
    const start = (job: Job, request: StartRequest = {}) => begin(job, request)

    const resumeOne = (instanceId: string, jobName: string, config: JobConfig) =>
      host(instanceId, jobName, config, resumeTracker(instanceId, localId, hooksOf(instanceId, config)))

    const resumeAll = (filter?: (instanceId: string, job: string) => boolean) =>
      Effect.gen(function* () {
        const ids: string[] = []
        for (const id of yield* store.listInstances()) {
          if (live.has(id) || starting.has(id)) continue
          const stored = yield* store.load(id)
          if (stored === undefined || filter?.(id, stored.instance.job) === false) continue
          if (!jobs.has(stored.instance.job))
            log(`warning: instance ${id} runs job ${stored.instance.job}, which this host does not know`)
          const resumed = yield* Effect.exit(resumeOne(id, stored.instance.job, stored.instance.config))
          if (Exit.isFailure(resumed)) {
            log(`cannot resume instance ${id}: ${String(resumed.cause)}`)
            continue
          }
          ids.push(id)
          resumedIds.push(id)
          log(`resumed instance ${id} (job ${stored.instance.job})`)
        }
        return ids
      })

    // Resume what the store holds before anyone can talk to the host (R-REC-1).
    if (options.resume !== false) yield* resumeAll(options.resume)

    yield* Effect.addFinalizer(() =>
      Effect.forEach([...live.values()], drop, { discard: true }).pipe(Effect.andThen(Effect.sync(() => live.clear())))
    )

    return {
      submit: (request) =>
        Effect.gen(function* () {
          const job = jobOf(request.job)
          if (job === undefined) {
            const known = [...jobs.keys()].map((name) => JSON.stringify(name)).join(", ")
            return yield* new RejectedError({
              reason: "bad-input",
              message: `unknown job ${JSON.stringify(request.job)}; this tracker knows ${known}`
            })
          }
          // The overrides are checked against the job's own resolved config before anything is looked up or stored.
          if (request.config !== undefined) {
            const refused = submitRefusal(
              yield* resolveConfig({ ...options.config, ...job.config }),
              job,
              request.config
            )
            if (refused !== undefined) return yield* refused
          }
          if (request.instanceId !== undefined && (yield* has(request.instanceId)))
            return { instanceId: request.instanceId }
          const tracker = yield* begin(job, request, overCap)
          return { instanceId: tracker.instanceId }
        }),
      start,
      tracker: trackerOf,
      live: (instanceId) => live.get(instanceId),
      instances: () => [...live.values()],
      list: (limit = 100) =>
        Effect.map(outcomes.list(limit), (records) =>
          [
            ...[...live.values()].map((entry) => ({
              instanceId: entry.instanceId,
              job: entry.job,
              state: "running" as const
            })),
            ...records.filter((record) => !live.has(record.instanceId)).map(summaryOf)
          ].slice(0, limit)
        ),
      status: (instanceId) => Effect.flatMap(trackerOf(instanceId), (tracker) => tracker.progress),
      outcome: (instanceId) => Effect.map(outcomes.get(instanceId), (record) => record?.outcome),
      kill: (instanceId, reason) => Effect.flatMap(trackerOf(instanceId), (tracker) => tracker.kill(null, reason)),
      subscribe: (instanceId, listener) =>
        Effect.suspend(() => {
          const entry = live.get(instanceId)
          return entry === undefined
            ? Effect.fail(unknownInstance(instanceId))
            : Effect.succeed(entry.tracker.onProgress(listener))
        }),
      release: (instanceId) =>
        Effect.suspend(() => {
          const entry = live.get(instanceId)
          return entry === undefined ? Effect.void : drop(entry)
        }),
      resume: (instanceId) =>
        Effect.gen(function* () {
          const entry = live.get(instanceId)
          if (entry !== undefined) return entry.tracker
          const stored = yield* store.load(instanceId)
          if (stored === undefined) return yield* unknownInstance(instanceId)
          const tracker = yield* resumeOne(instanceId, stored.instance.job, stored.instance.config)
          resumedIds.push(instanceId)
          return tracker
        }),
      resumeAll: () => resumeAll(),
      resumed: () => [...resumedIds],
      localWorkerId: localId,
      localWorker: resident
    } satisfies TrackerHost
  })
