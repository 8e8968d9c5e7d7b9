import { Effect, Schedule, type Scope } from "effect"
import { defaultConfig } from "../model/config.ts"
import { RejectedError } from "../model/errors.ts"
import type { Executor } from "../worker/execute.ts"
import { startWorker, type TrackerLink, type WorkerHandle } from "../worker/runtime.ts"
import { httpTrackerClient, httpTrackerLink, type ClientError, type HttpClientOptions } from "./client.ts"
import type { JobTable } from "./tracker-server.ts"
import { makeWorkerApp } from "./worker-app.ts"

export interface HttpWorkerOptions<E> {
  /** The tracker server's base URL, e.g. http://127.0.0.1:7070 */
  readonly tracker: string
  /** This worker's credential (`workerCredential(secret, id)`, R-WIRE-4): it acts as this worker only. */
  readonly token: string
  readonly jobs: JobTable
  /** Tasks run at once. Default 16. */
  readonly slots?: number
  /** Runs the processors elsewhere, e.g. on a thread pool (threadPool); by default in this thread. */
  readonly executor?: Executor
  readonly id: string
  /** How often the registration is renewed, in ms; default the heartbeat interval. */
  readonly registerInterval?: number
  readonly fetch?: HttpClientOptions["fetch"]
  readonly log?: (line: string) => void
  /** Serves the worker's app where the tracker can reach it, for as long as the scope lives; its base URL. */
  readonly listen: (
    fetch: (request: Request) => Response | Promise<Response>
  ) => Effect.Effect<{ readonly url: string }, E, Scope.Scope>
}

/** 32 random bytes as hex. */
const randomKey = (): string =>
  Array.from(crypto.getRandomValues(new Uint8Array(32)), (byte) => byte.toString(16).padStart(2, "0")).join("")

export interface RunningWorker {
  readonly id: string
  /** Where the tracker sends batches. */
  readonly url: string
  readonly worker: WorkerHandle
  /** Instances this process serves now. */
  readonly instances: () => ReadonlyArray<string>
}

/**
 * A worker on any runtime that serves HTTP: serves the worker side of the protocol, registers with the tracker
 * server and renews that registration (so a restarted server learns it again), joins the instances the
 * answers name and those whose batches arrive, and runs their tasks on core's worker runtime.
 * Fails if the first registration does not get through.
 */
export const startHttpWorker = <E>(
  options: HttpWorkerOptions<E>
): Effect.Effect<RunningWorker, E | ClientError, Scope.Scope> =>
  Effect.gen(function* () {
    const log = options.log ?? (() => {})
    const id = options.id
    const slots = options.slots ?? 16
    const heartbeatInterval = Math.min(
      defaultConfig.heartbeatInterval,
      ...[...options.jobs.values()].map((job) => job.config?.heartbeatInterval ?? Infinity)
    )
    const client: HttpClientOptions = {
      baseUrl: options.tracker.replace(/\/+$/, ""),
      token: options.token,
      fetch: options.fetch ?? globalThis.fetch
    }
    const linkTo = httpTrackerLink(client)
    /** Instances served here: joined from a registration answer or a batch; left on stop. */
    const joined = new Set<string>()
    let worker: WorkerHandle | undefined

    /** A tracker that no longer knows an instance (finished, or lost with a memory store): stop serving it. */
    const forget = (instanceId: string, why: string) => {
      if (!joined.delete(instanceId)) return
      worker?.stop({ instanceId, taskIds: null, reason: why })
      log(`left instance ${instanceId}: ${why}`)
    }

    const connect = (instanceId: string): TrackerLink => {
      const link = linkTo(instanceId)
      return {
        ...link,
        heartbeat: (heartbeat) =>
          link.heartbeat(heartbeat).pipe(
            Effect.tapError((error) =>
              Effect.sync(() => {
                if (error instanceof RejectedError && error.reason === "unknown-instance")
                  forget(instanceId, error.message)
              })
            )
          )
      }
    }

    const key = randomKey()
    const handle = yield* startWorker({
      id,
      slots,
      jobs: (name) => options.jobs.get(name),
      connect,
      heartbeatInterval,
      ...(options.executor === undefined ? {} : { executor: options.executor })
    })
    worker = handle

    const app = makeWorkerApp(
      {
        ...handle,
        // A refusal (no params for a fresh runtime, say) goes back to the tracker, which sends again at once.
        deliver: (batch) => {
          const refused = handle.deliver(batch)
          if (refused === undefined) joined.add(batch.instanceId)
          return refused
        },
        stop: (message) => {
          if (message.taskIds === null) joined.delete(message.instanceId)
          handle.stop(message)
        }
      },
      // The tracker calls with this key, chosen here and sent with the registration: it opens this worker only.
      { token: key }
    )
    const listening = yield* options.listen(app.fetch)

    const trackerClient = httpTrackerClient(client)
    const registration = { workerId: id, url: listening.url, key, slots, jobs: [...options.jobs.keys()] }
    const register = trackerClient.registerWorker(registration).pipe(
      Effect.tap((instances) =>
        Effect.sync(() => {
          for (const instanceId of instances) {
            if (joined.has(instanceId)) continue
            joined.add(instanceId)
            Effect.runFork(
              handle.join(instanceId).pipe(
                Effect.tapError(() => Effect.sync(() => joined.delete(instanceId))),
                Effect.ignore
              )
            )
          }
        })
      )
    )

    yield* register
    log(
      `worker ${id} listening on ${listening.url}, registered with ${client.baseUrl} ` +
        `(${slots} slots; jobs ${registration.jobs.join(", ")})`
    )

    let reachable = true
    const renew = register.pipe(
      Effect.tap(() =>
        Effect.sync(() => {
          if (!reachable) log(`registered again with ${client.baseUrl}`)
          reachable = true
        })
      ),
      Effect.catch((error: ClientError) =>
        Effect.sync(() => {
          if (reachable) log(`cannot reach the tracker (${error.message}); retrying`)
          reachable = false
        })
      )
    )
    yield* Effect.forkScoped(Effect.repeat(renew, Schedule.spaced(options.registerInterval ?? heartbeatInterval)))

    return { id, url: listening.url, worker: handle, instances: () => [...joined] }
  })
