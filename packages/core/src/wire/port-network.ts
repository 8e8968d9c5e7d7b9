/**
 * The page's side of the Web Worker transport: the tracker's Transport (batches and stops to workers
 * over postMessage, the outcome to its owner in the page) and the calls workers make back to the
 * tracker. Workers in the page itself (the tracker's local worker) are called directly.
 */
import { Deferred, Effect, Exit, Schema, Scope } from "effect"
import { directLink } from "../memory/transport.ts"
import { RejectedError, TransportError } from "../model/errors.ts"
import type { Outcome } from "../model/instance.ts"
import type { StopMessage, TaskBatch } from "../model/messages.ts"
import type { TransportShape } from "../ports/transport.ts"
import type { Tracker } from "../tracker/tracker.ts"
import type { TrackerLink, WorkerHandle } from "../worker/runtime.ts"
import {
  calls,
  decoder,
  encodeLinkError,
  transferable,
  WorkerCall,
  WorkerNotice,
  type CallName,
  type LinkError,
  type PageMessage,
  type WorkerError,
  type WorkerLike
} from "./port-protocol.ts"

const unreachable = (what: string) => new TransportError({ reason: "unreachable", message: `${what} is not reachable` })

/** Answers are encoded by their schema, so the tagged errors inside a reports reply cross as data. */
const encodeAnswer: { readonly [K in CallName]: (value: unknown) => unknown } = {
  report: Schema.encodeSync(calls.report.answer) as (value: unknown) => unknown,
  map: Schema.encodeSync(calls.map.answer) as (value: unknown) => unknown,
  heartbeat: () => null,
  appendContext: Schema.encodeSync(calls.appendContext.answer) as (value: unknown) => unknown,
  readResults: Schema.encodeSync(calls.readResults.answer) as (value: unknown) => unknown
}

const decodeCall = decoder(WorkerCall)
const decodeNotice = decoder(WorkerNotice)
const decodeRequest = {
  report: decoder(calls.report.request),
  map: decoder(calls.map.request),
  heartbeat: decoder(calls.heartbeat.request),
  appendContext: decoder(calls.appendContext.request),
  readResults: decoder(calls.readResults.request)
}

/** Something that can receive task batches and stops: a Web Worker, or a worker in the page. */
interface Endpoint {
  /** A worker in the page answers with its refusal; a Web Worker's answer does not come back (undefined). */
  readonly deliver: (batch: TaskBatch) => RejectedError | undefined
  readonly stop: (message: StopMessage) => void
}

/** A Web Worker running the core's worker runtime, as the page sees it. */
export interface RemoteWorker {
  readonly id: string
  readonly worker: WorkerLike
  /** Registers the worker with an instance's tracker (its first heartbeat, R-WORK-5). */
  readonly join: (instanceId: string) => Effect.Effect<void, LinkError>
  /** True once the worker failed or was terminated: sends to it fail (R-DISP-7). */
  readonly closed: () => boolean
}

export interface SpawnOptions {
  readonly id: string
  readonly create: () => WorkerLike
  readonly slots: number
  /** Milliseconds between the worker's heartbeats (R-WORK-1). */
  readonly heartbeatInterval: number
  /** How long to wait for the worker to start. Default 30 s. */
  readonly startTimeout?: number
}

export type OutcomeOwner = (instanceId: string, outcome: Outcome) => void | Promise<void>

export interface WebWorkerNetwork {
  readonly transport: TransportShape
  /** A direct link to an instance's tracker, for workers that run in the page. */
  readonly link: (instanceId: string) => TrackerLink
  readonly addTracker: (tracker: Tracker) => void
  readonly removeTracker: (instanceId: string) => void
  /** Receives every outcome; delivery succeeds once it returns (or its promise resolves) (R-FIN-6). */
  readonly setOwner: (owner: OutcomeOwner) => void
  /** A worker that runs in the page, reached by direct calls. */
  readonly addLocalWorker: (handle: WorkerHandle) => void
  /** Starts a Web Worker, sends it its identity and waits until it runs; it is terminated when the scope closes. */
  readonly spawn: (options: SpawnOptions) => Effect.Effect<RemoteWorker, TransportError, Scope.Scope>
  readonly workers: ReadonlyMap<string, RemoteWorker>
}

export const makeWebWorkerNetwork = (): WebWorkerNetwork => {
  const endpoints = new Map<string, Endpoint>()
  const remotes = new Map<string, RemoteWorker>()
  const trackers = new Map<string, Tracker>()
  let owner: OutcomeOwner = () => undefined

  const trackerOf = (instanceId: string): Effect.Effect<Tracker, TransportError> =>
    Effect.suspend(() => {
      const found = trackers.get(instanceId)
      return found === undefined ? Effect.fail(unreachable(`the tracker of ${instanceId}`)) : Effect.succeed(found)
    })

  const link = (instanceId: string): TrackerLink => directLink(trackerOf(instanceId))

  const endpoint = (workerId: string) =>
    Effect.suspend(() => {
      const found = endpoints.get(workerId)
      return found === undefined ? Effect.fail(unreachable(`worker ${workerId}`)) : Effect.succeed(found)
    })

  /**
   * postMessage throws on a value it cannot clone or a worker that is gone:
   * a failed send, never a crash of the tracker.
   */
  const deliverTo = (workerId: string, what: string, act: (found: Endpoint) => RejectedError | undefined) =>
    Effect.flatMap(endpoint(workerId), (found) =>
      Effect.try({
        try: () => act(found),
        catch: (error) =>
          new TransportError({
            reason: "unreachable",
            message: `${what} to worker ${workerId} failed: ${String(error)}`
          })
      }).pipe(
        // A worker that refused the batch took nothing of it: the send fails (R-DISP-7, R-DISP-10).
        Effect.flatMap((refused) =>
          refused === undefined
            ? Effect.void
            : Effect.fail(new TransportError({ reason: "rejected", message: refused.message }))
        )
      )
    )

  const transport: TransportShape = {
    send: (workerId, batch) => deliverTo(workerId, "a task batch", (found) => found.deliver(batch)),
    stop: (workerId, message) =>
      deliverTo(workerId, "a stop", (found) => {
        found.stop(message)
        return undefined
      }),
    deliverOutcome: (instanceId, outcome) =>
      Effect.tryPromise({
        try: async () => owner(instanceId, outcome),
        catch: (error) =>
          new TransportError({
            reason: "rejected",
            message: `the owner of ${instanceId} did not take the outcome: ${String(error)}`
          })
      })
  }

  /**
   * A worker's call to the tracker: checked with the core's schema,
   * answered with the result encoded by its own schema.
   */
  const answerCall = (
    workerId: string,
    name: CallName,
    payload: unknown,
    reply: (answer: { ok: true; value: unknown } | { ok: false; error: LinkError }) => void
  ): void => {
    const decoded = decodeRequest[name](payload)
    if (!decoded.ok) {
      reply({ ok: false, error: new RejectedError({ reason: "bad-input", message: `${name}: ${decoded.error}` }) })
      return
    }
    const request = decoded.value
    if ("workerId" in request && request.workerId !== workerId) {
      reply({
        ok: false,
        error: new RejectedError({
          reason: "wrong-worker",
          message: `worker ${workerId} sent a ${name} as ${request.workerId}`
        })
      })
      return
    }
    const target = link(request.instanceId)
    const effect: Effect.Effect<unknown, LinkError> =
      name === "report"
        ? target.report(request as typeof calls.report.request.Type)
        : name === "map"
          ? target.map(request as typeof calls.map.request.Type)
          : name === "heartbeat"
            ? Effect.as(target.heartbeat(request as typeof calls.heartbeat.request.Type), null)
            : name === "appendContext"
              ? target.appendContext(request as typeof calls.appendContext.request.Type)
              : (() => {
                  const { run, afterSeq, limit } = request as typeof calls.readResults.request.Type
                  return target.readResults(run, afterSeq, limit)
                })()
    void Effect.runPromiseExit(effect).then((exit) => {
      if (Exit.isSuccess(exit)) reply({ ok: true, value: exit.value })
      else {
        const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
        reply({
          ok: false,
          error:
            failure?._tag === "Fail"
              ? (failure.error as LinkError)
              : new TransportError({ reason: "rejected", message: `${name} failed in the page` })
        })
      }
    })
  }

  const spawn = (options: SpawnOptions): Effect.Effect<RemoteWorker, TransportError, Scope.Scope> =>
    Effect.gen(function* () {
      const scope = yield* Scope.Scope
      const worker = yield* Effect.try({
        try: options.create,
        catch: (error) =>
          new TransportError({
            reason: "unreachable",
            message: `worker ${options.id} could not be created: ${String(error)}`
          })
      })
      const port = worker
      const ready = Deferred.makeUnsafe<void, TransportError>()
      const joins = new Map<number, Deferred.Deferred<void, LinkError>>()
      let nextJoin = 0
      let closed = false

      const post = (message: PageMessage, transfer: ArrayBuffer[] = []) => {
        if (closed) throw unreachable(`worker ${options.id}`)
        port.postMessage(message, { transfer })
      }

      const close = (why: string) => {
        if (closed) return
        closed = true
        worker.terminate()
        if (endpoints.get(options.id) === handleEndpoint) endpoints.delete(options.id)
        if (remotes.get(options.id) === remote) remotes.delete(options.id)
        const error = unreachable(`worker ${options.id} (${why})`)
        Deferred.doneUnsafe(ready, Effect.fail(error))
        for (const deferred of joins.values()) Deferred.doneUnsafe(deferred, Effect.fail(error))
        joins.clear()
      }

      port.addEventListener("message", (event: MessageEvent) => {
        const data: unknown = event.data
        const call = decodeCall(data)
        if (call.ok) {
          const { id, call: name, payload } = call.value
          answerCall(options.id, name, payload, (answer) => {
            if (closed) return
            // Encoded values, not the decoded types the PageMessage schema describes: the worker decodes them.
            let message: unknown
            try {
              message = answer.ok
                ? { type: "answer", id, ok: true, value: encodeAnswer[name](answer.value) }
                : { type: "answer", id, ok: false, error: encodeLinkError(answer.error) }
            } catch (error) {
              const failure = new TransportError({
                reason: "rejected",
                message: `the ${name} answer could not be encoded: ${String(error)}`
              })
              message = { type: "answer", id, ok: false, error: encodeLinkError(failure) }
            }
            port.postMessage(message)
          })
          return
        }
        const asCall = data as { type?: unknown; id?: unknown } | null
        if (asCall?.type === "call" && typeof asCall.id === "number") {
          // A call we cannot read is still answered, so its caller does not wait forever (R-WIRE-1).
          const error = new RejectedError({ reason: "bad-input", message: call.error })
          port.postMessage({ type: "answer", id: asCall.id, ok: false, error: encodeLinkError(error) })
          return
        }
        const notice = decodeNotice(data)
        if (!notice.ok) {
          console.warn(`taskfold: dropped a malformed message from worker ${options.id}: ${notice.error}`)
          return
        }
        const value = notice.value
        if (value.type === "ready") Deferred.doneUnsafe(ready, Effect.void)
        else {
          const deferred = joins.get(value.id)
          joins.delete(value.id)
          if (deferred !== undefined)
            Deferred.doneUnsafe(deferred, value.error === null ? Effect.void : Effect.fail(value.error))
        }
      })
      port.addEventListener("messageerror", () =>
        console.warn(`taskfold: a message from worker ${options.id} could not be read`)
      )
      // A script that fails to load or throws outside any task: the worker is gone for the tracker
      // (R-DISP-7, R-WORK-1).
      worker.addEventListener("error", (event: WorkerError) => {
        event.preventDefault()
        close(event.message || "failed")
      })

      const handleEndpoint: Endpoint = {
        deliver: (batch) => {
          const transfer: ArrayBuffer[] = []
          const tasks = batch.tasks.map((task) =>
            typeof task.body === "string" ? task : { ...task, body: transferable(task.body, transfer) }
          )
          post({ type: "deliver", batch: { ...batch, tasks } }, transfer)
          return undefined
        },
        stop: (message) => post({ type: "stop", message })
      }

      const remote: RemoteWorker = {
        id: options.id,
        worker,
        closed: () => closed,
        join: (instanceId) =>
          Effect.suspend(() => {
            if (closed) return Effect.fail(unreachable(`worker ${options.id}`))
            const id = nextJoin++
            const deferred = Deferred.makeUnsafe<void, LinkError>()
            joins.set(id, deferred)
            post({ type: "join", id, instanceId })
            return Deferred.await(deferred)
          })
      }

      worker.start?.()
      yield* Scope.addFinalizer(
        scope,
        Effect.sync(() => close("terminated"))
      )
      post({ type: "init", workerId: options.id, slots: options.slots, heartbeatInterval: options.heartbeatInterval })
      const started = yield* Deferred.await(ready).pipe(Effect.timeoutOption(options.startTimeout ?? 30_000))
      if (started._tag === "None") {
        close("did not start")
        return yield* Effect.fail(
          unreachable(`worker ${options.id} (did not start within ${options.startTimeout ?? 30_000} ms)`)
        )
      }
      endpoints.set(options.id, handleEndpoint)
      remotes.set(options.id, remote)
      return remote
    })

  return {
    transport,
    link,
    addTracker: (tracker) => void trackers.set(tracker.instanceId, tracker),
    removeTracker: (instanceId) => void trackers.delete(instanceId),
    setOwner: (next) => {
      owner = next
    },
    addLocalWorker: (handle) => void endpoints.set(handle.id, { deliver: handle.deliver, stop: handle.stop }),
    spawn,
    workers: remotes
  }
}
