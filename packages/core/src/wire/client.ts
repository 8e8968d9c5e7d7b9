import { Duration, Effect } from "effect"
import type { ReportsReply } from "../model/messages.ts"
import { ConfigError, RejectedError, StoreError, TransportError } from "../model/errors.ts"
import type { InstanceSummary } from "../host/host.ts"
import type { Outcome, Progress } from "../model/instance.ts"
import { TaskBatch, type HeartbeatReply } from "../model/messages.ts"
import type { StoredResult } from "../ports/task-store.ts"
import type { TransportShape } from "../ports/transport.ts"
import type { TrackerLink } from "../worker/runtime.ts"
import { decodeMessage, encodeJson, parseJson } from "./codec.ts"
import { paths, type InstanceCall, type SubmitRequest, type WireError, type WorkerRegistration } from "./protocol.ts"

export type ClientError = RejectedError | ConfigError | StoreError | TransportError

export interface HttpClientOptions {
  /** Where the other side listens, e.g. http://127.0.0.1:7070 */
  readonly baseUrl: string
  readonly token: string
  /** The runtime's fetch (Node, workerd, browser) or a service binding's. */
  readonly fetch: (input: string, init: RequestInit) => Promise<Response>
  /** Per request; default 30 s. */
  readonly timeoutMs?: number
}

const rejectedReasons = new Set<string>(RejectedError.fields.reason.literals)

/** Rebuilds the typed error a server answered with. */
const errorFrom = (status: number, body: unknown): ClientError => {
  const error = (body as Partial<WireError> | undefined)?.error
  const message = error?.message ?? `HTTP ${status}`
  if (error?.tag === "RejectedError" && rejectedReasons.has(error.reason)) {
    return new RejectedError({ reason: error.reason as RejectedError["reason"], message })
  }
  if (error?.tag === "StoreError") return new StoreError({ reason: "unavailable", message })
  if (error?.tag === "ConfigError") return new ConfigError({ reason: "invalid-config", message })
  if (status === 404) return new RejectedError({ reason: "unknown-instance", message })
  if (status === 400)
    return new RejectedError({ reason: "bad-input", message: error?.path ? `${message} at ${error.path}` : message })
  if (status === 413) return new TransportError({ reason: "too-large", message })
  return new TransportError({ reason: status === 401 || status === 403 ? "rejected" : "unreachable", message })
}

/** fetch's own message ("fetch failed") with the reason under it ("connect ECONNREFUSED 127.0.0.1:7070"). */
const describeCause = (cause: unknown): string => {
  if (!(cause instanceof Error)) return String(cause)
  const inner = (cause as { readonly cause?: unknown }).cause
  return inner instanceof Error && inner.message !== cause.message
    ? `${cause.message} (${inner.message})`
    : cause.message
}

export const request = (
  options: HttpClientOptions,
  method: "GET" | "POST",
  path: string,
  body?: unknown
): Effect.Effect<unknown, ClientError> =>
  Effect.tryPromise({
    try: async (signal) => {
      const init: RequestInit = {
        method,
        signal,
        headers: { authorization: `Bearer ${options.token}`, "content-type": "application/json" }
      }
      if (body !== undefined) init.body = encodeJson(body)
      const response = await options.fetch(`${options.baseUrl}${path}`, init)
      const text = await response.text()
      return { status: response.status, ok: response.ok, body: text.length === 0 ? null : parseJson(text) }
    },
    catch: (cause) =>
      new TransportError({
        reason: "unreachable",
        message: `${method} ${options.baseUrl}${path}: ${describeCause(cause)}`
      })
  }).pipe(
    Effect.timeoutOrElse({
      duration: Duration.millis(options.timeoutMs ?? 30_000),
      orElse: () =>
        Effect.fail(
          new TransportError({
            reason: "timeout",
            message: `${method} ${path} took longer than ${options.timeoutMs ?? 30_000} ms`
          })
        )
    }),
    Effect.flatMap(
      (reply): Effect.Effect<unknown, ClientError> =>
        reply.ok ? Effect.succeed(reply.body) : Effect.fail(errorFrom(reply.status, reply.body))
    )
  )

const field =
  <A>(name: string) =>
  (body: unknown): A =>
    (body as Record<string, A>)[name] as A

/** A worker's link knows no config errors: a tracker never answers one to a worker's message. */
const asLinkError = (error: ClientError): Exclude<ClientError, ConfigError> =>
  error instanceof ConfigError ? new TransportError({ reason: "rejected", message: error.message }) : error

/** A worker's link to the tracker of one instance, over HTTP. */
export const httpTrackerLink =
  (options: HttpClientOptions) =>
  (instanceId: string): TrackerLink => {
    const call = (method: "GET" | "POST", path: string, message?: unknown) =>
      request(options, method, path, message).pipe(Effect.mapError(asLinkError))
    const post = (name: InstanceCall, message: unknown) => call("POST", paths.call(instanceId, name), message)
    return {
      report: (batch) =>
        post("reports", batch).pipe(
          Effect.map((body): ReportsReply => {
            const reply = body as {
              applied: number
              dropped: number
              rejected: Array<{ taskId: string; reason: RejectedError["reason"]; message: string }>
            }
            return {
              applied: reply.applied,
              dropped: reply.dropped,
              unknown: [],
              rejected: reply.rejected.map(({ taskId, reason, message }) => ({
                taskId,
                error: new RejectedError({ reason, message })
              }))
            }
          })
        ),
      // A call held by back-pressure is answered "suspended" before any timeout; it is sent again as it was,
      // and the tracker joins it to the one still waiting (R-MAP-4, R-MAP-6).
      map: (message) =>
        post("map", message).pipe(
          Effect.flatMap((body) => {
            const reply = body as { created?: number; suspended?: boolean }
            return reply.suspended === true ? Effect.fail(SUSPENDED) : Effect.succeed(reply.created ?? 0)
          }),
          Effect.retry({ while: (error) => error === SUSPENDED }),
          Effect.mapError((error) =>
            error === SUSPENDED ? new TransportError({ reason: "timeout", message: "map call suspended" }) : error
          )
        ),
      heartbeat: (heartbeat) =>
        post("heartbeat", heartbeat).pipe(
          Effect.map((body): HeartbeatReply | void => {
            const mode = (body as { dispatchMode?: unknown } | null)?.dispatchMode
            return mode === "pull" || mode === "push" ? { dispatchMode: mode } : undefined
          })
        ),
      pull: (request) => httpPull(options, instanceId, request.workerId, request.pageSize),
      appendContext: (message) => post("context", message).pipe(Effect.map(field<boolean>("accepted"))),
      readResults: (run, afterSeq, limit) =>
        call("GET", `${paths.call(instanceId, "results")}?run=${run}&afterSeq=${afterSeq}&limit=${limit}`).pipe(
          Effect.map(field<ReadonlyArray<StoredResult>>("results"))
        )
    }
  }

const SUSPENDED = new TransportError({ reason: "timeout", message: "suspended" })

/** Pulls a page of tasks in pull mode (R-DISP-9); the batch is checked with its Schema. */
export const httpPull = (
  options: HttpClientOptions,
  instanceId: string,
  workerId: string,
  pageSize: number
): Effect.Effect<TaskBatch | null, Exclude<ClientError, ConfigError>> =>
  request(options, "POST", paths.call(instanceId, "pull"), { instanceId, workerId, pageSize }).pipe(
    Effect.mapError(asLinkError),
    Effect.flatMap((body) => {
      const batch = (body as { batch: unknown }).batch
      return batch === null
        ? Effect.succeed(null)
        : decodeMessage(TaskBatch, batch).pipe(
            Effect.mapError((failure) => new TransportError({ reason: "rejected", message: failure.message }))
          )
    })
  )

export interface InstanceStatus {
  readonly instanceId: string
  readonly progress: Progress
  readonly outcome: Outcome | null
}

/** What an instance's owner uses: submit, status, kill; and a worker process's registration. */
export const httpTrackerClient = (options: HttpClientOptions) => ({
  submit: (submit: SubmitRequest) =>
    request(options, "POST", paths.instances, submit).pipe(Effect.map(field<string>("instanceId"))),
  status: (instanceId: string) =>
    request(options, "GET", paths.instance(instanceId)).pipe(Effect.map((body) => body as InstanceStatus)),
  /** Instances the tracker has, newest first: live ones, then finished ones it still keeps. */
  list: (query: { readonly limit?: number; readonly job?: string; readonly state?: InstanceSummary["state"] } = {}) => {
    const search = new URLSearchParams()
    for (const [key, value] of Object.entries(query)) if (value !== undefined) search.set(key, String(value))
    const suffix = search.size === 0 ? "" : `?${search}`
    return request(options, "GET", `${paths.instances}${suffix}`).pipe(
      Effect.map(field<ReadonlyArray<InstanceSummary>>("instances"))
    )
  },
  kill: (instanceId: string, reason: string, taskId: string | null = null) =>
    request(options, "POST", paths.call(instanceId, "kill"), { taskId, reason }).pipe(Effect.asVoid),
  registerWorker: (registration: WorkerRegistration) =>
    request(options, "POST", paths.workers, registration).pipe(Effect.map(field<ReadonlyArray<string>>("instances")))
})

/** How a tracker reaches worker processes over HTTP; the outcome goes wherever `deliverOutcome` says. */
export const httpWorkerTransport = (options: {
  readonly fetch: HttpClientOptions["fetch"]
  readonly timeoutMs?: number
  /**
   * Where a worker listens and the key it chose to be called with (R-WIRE-4: never the tracker's secret), or
   * undefined if it never registered.
   */
  readonly workerAddress: (workerId: string) => { readonly url: string; readonly key: string } | undefined
  readonly deliverOutcome: TransportShape["deliverOutcome"]
}): TransportShape & {
  /** Asks a worker to join an instance: it heartbeats the instance's tracker itself (R-WORK-5). */
  readonly invite: (workerId: string, instanceId: string) => Effect.Effect<void, TransportError>
} => {
  const to = (workerId: string, path: string, message: unknown) =>
    Effect.suspend(() => {
      const address = options.workerAddress(workerId)
      if (address === undefined)
        return Effect.fail(new TransportError({ reason: "unreachable", message: `worker ${workerId} has no address` }))
      const client: HttpClientOptions = {
        baseUrl: address.url,
        token: address.key,
        fetch: options.fetch,
        ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {})
      }
      return request(client, "POST", path, message).pipe(
        Effect.asVoid,
        Effect.mapError((error) =>
          error instanceof TransportError ? error : new TransportError({ reason: "rejected", message: error.message })
        )
      )
    })
  return {
    send: (workerId, batch) => to(workerId, paths.batches, batch),
    stop: (workerId, message) => to(workerId, paths.stop, message),
    invite: (workerId, instanceId) => to(workerId, paths.invite, { instanceId }),
    deliverOutcome: options.deliverOutcome
  }
}
