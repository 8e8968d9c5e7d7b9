import { Effect, type Scope } from "effect"
import { makeTrackerHost, type TrackerHost } from "../host/host.ts"
import { RejectedError, type StoreError } from "../model/errors.ts"
import type { Job } from "../model/job.ts"
import type { OutcomeLogShape } from "../ports/outcome-log.ts"
import type { TaskStoreShape } from "../ports/task-store.ts"
import type { Tracker } from "../tracker/tracker.ts"
import type { Executor } from "../worker/execute.ts"
import type { WorkerHandle } from "../worker/runtime.ts"
import { httpWorkerTransport } from "./client.ts"
import type { WorkerRegistration } from "./protocol.ts"
import type { TrackerApi } from "./tracker-app.ts"
import { hostMetricsText } from "./metrics-text.ts"

/** Job definitions by name, as a server, a worker process or `taskfold run` knows them. */
export type JobTable = ReadonlyMap<string, Job>

/** The id of the worker inside the tracker server, which runs every instance's root and final task. */
export const LOCAL_WORKER_ID = "local"

export interface TrackerServerOptions {
  /** The shared secret; the server sends it to worker processes too. */
  readonly token: string
  /** The jobs instances can be submitted for; the local worker runs their root and final tasks. */
  readonly jobs: JobTable
  readonly store: TaskStoreShape
  /** Where outcomes are kept after release; memory by default. */
  readonly outcomes?: OutcomeLogShape
  /** Slots of the local worker. Default 4. */
  readonly localSlots?: number
  /** Where the local worker runs processors (a thread pool); by default in this thread. */
  readonly executor?: Executor
  /** How long a registration counts without being renewed, in ms; then it is removed. Default 30 s. */
  readonly registrationTtl?: number
  /**
   * Registrations held at once; one more is refused until one expires (R-WIRE-3). A worker credential holds one:
   * its id's. Default 1,000.
   */
  readonly maxRegistrations?: number
  /** Live instances at once; a submit past it is refused (429) until one ends. Default 1,000. */
  readonly maxLiveInstances?: number
  /** Per request to a worker process, in ms. Default 5 s: a hung worker must not hold a tracker long. */
  readonly sendTimeoutMs?: number
  readonly fetch?: (input: string, init: RequestInit) => Promise<Response>
  /** Which stored instances to resume on start (R-REC-1); all by default. */
  readonly resume?: (instanceId: string, job: string) => boolean
  /** One line per notable event (instance started, resumed, finished; worker registered). */
  readonly log?: (line: string) => void
}

interface RegisteredWorker {
  readonly id: string
  readonly url: string
  readonly key: string
  readonly jobs: ReadonlySet<string>
  readonly renewedAt: number
}

export interface TrackerServer {
  /** For makeTrackerApp: core's host, and worker registration. */
  readonly host: TrackerApi
  /** The host itself: list, status, kill, subscribe. */
  readonly core: TrackerHost
  /** Ids of the live instances. */
  readonly instances: () => ReadonlyArray<string>
  /** Instances resumed from the store when the server started (R-REC-1). */
  readonly resumed: ReadonlyArray<string>
  readonly tracker: (instanceId: string) => Tracker | undefined
  readonly localWorker: WorkerHandle
}

const httpUrl = (text: string): boolean => {
  try {
    const url = new URL(text)
    return url.protocol === "http:" || url.protocol === "https:"
  } catch {
    return false
  }
}

const badInput = (message: string) => new RejectedError({ reason: "bad-input", message })

/**
 * A tracker server on any runtime that serves HTTP: core's TrackerHost, with worker processes that register
 * where they listen: each new instance invites the registered workers that know its job, and they join it
 * with their own heartbeats (R-WORK-5). Closing the scope closes every tracker; the store keeps their state.
 */
export const makeTrackerServer = (
  options: TrackerServerOptions
): Effect.Effect<TrackerServer, StoreError, Scope.Scope> =>
  Effect.gen(function* () {
    const log = options.log ?? (() => {})
    const ttl = options.registrationTtl ?? 30_000
    const maxRegistrations = options.maxRegistrations ?? 1_000
    const registry = new Map<string, RegisteredWorker>()
    const fresh = (worker: RegisteredWorker) => Date.now() - worker.renewedAt <= ttl
    /** A registration not renewed within the ttl is gone: its worker stopped, or cannot reach us (R-WIRE-3). */
    const sweep = () => {
      for (const [id, worker] of registry) if (!fresh(worker)) registry.delete(id)
    }

    const remote = httpWorkerTransport({
      fetch: options.fetch ?? globalThis.fetch,
      timeoutMs: options.sendTimeoutMs ?? 5_000,
      workerAddress: (workerId) => registry.get(workerId),
      deliverOutcome: () => Effect.void
    })

    const host = yield* makeTrackerHost({
      jobs: [...options.jobs.values()],
      store: options.store,
      local: {
        id: LOCAL_WORKER_ID,
        slots: options.localSlots ?? 4,
        ...(options.executor === undefined ? {} : { executor: options.executor })
      },
      remote,
      ...(options.outcomes === undefined ? {} : { outcomes: options.outcomes }),
      ...(options.resume === undefined ? {} : { resume: options.resume }),
      ...(options.maxLiveInstances === undefined ? {} : { maxLiveInstances: options.maxLiveInstances }),
      log,
      // Every registered worker of the job is invited and known before the local worker joins and the root
      // maps, so localWorker "exclude" finds them (R-DISP-5); a worker that does not answer holds at most a send.
      onStarted: (instance) =>
        Effect.forEach(
          [...registry.values()].filter((worker) => fresh(worker) && worker.jobs.has(instance.job)),
          (worker) => Effect.ignore(remote.invite(worker.id, instance.instanceId)),
          { concurrency: "unbounded", discard: true }
        )
    })

    const registerWorker = (registration: WorkerRegistration) =>
      Effect.suspend(() => {
        if (registration.workerId === LOCAL_WORKER_ID)
          return Effect.fail(badInput(`worker id ${LOCAL_WORKER_ID} is reserved for the tracker's own worker`))
        if (!httpUrl(registration.url))
          return Effect.fail(badInput(`url ${JSON.stringify(registration.url)} is not an http(s) URL`))
        sweep()
        const known = registry.get(registration.workerId)
        if (known === undefined && registry.size >= maxRegistrations)
          return Effect.fail(
            new RejectedError({
              reason: "worker-limit",
              message: `this tracker holds ${maxRegistrations} registrations (maxRegistrations); try again later`
            })
          )
        if (known?.url !== registration.url) {
          log(`worker ${registration.workerId} registered at ${registration.url} (${registration.slots} slots)`)
        }
        const worker = {
          id: registration.workerId,
          url: registration.url,
          key: registration.key,
          jobs: new Set(registration.jobs)
        }
        registry.set(worker.id, { ...worker, renewedAt: Date.now() })
        // The worker joins these itself, with its own heartbeats.
        const instances = host
          .instances()
          .filter((instance) => worker.jobs.has(instance.job))
          .map((instance) => instance.instanceId)
        return Effect.succeed({ instances })
      })

    return {
      host: {
        tracker: host.tracker,
        submit: host.submit,
        list: host.list,
        registerWorker,
        localWorkerId: LOCAL_WORKER_ID,
        metrics: () =>
          Effect.suspend(() => {
            sweep()
            const registrations = [{ labels: {}, value: registry.size }]
            return hostMetricsText(host, [
              { name: "taskfold_registrations", help: "Worker processes registered now", samples: registrations }
            ])
          })
      },
      core: host,
      instances: () => host.instances().map((instance) => instance.instanceId),
      resumed: host.resumed(),
      tracker: (instanceId) => host.live(instanceId)?.tracker,
      localWorker: host.localWorker!
    }
  })
