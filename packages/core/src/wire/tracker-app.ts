import { Duration, Effect, type Schema } from "effect"
import { Hono, type Context } from "hono"
import { bodyLimit } from "hono/body-limit"
import { ConfigError, RejectedError, StoreError, type TransportError } from "../model/errors.ts"
import { ContextAppend, Heartbeat, MapRequest, PullRequest, ReportBatch } from "../model/messages.ts"
import type { Tracker } from "../tracker/tracker.ts"
import type { TrackerHost } from "../host/host.ts"
import { decodeMessage, encodeJson, parseJson } from "./codec.ts"
import { type Caller, makeCredentialCheck } from "./credentials.ts"
import {
  DEFAULT_MAX_BODY_BYTES,
  KillBody,
  ListQuery,
  SMALL_BODY_BYTES,
  ResultsQuery,
  SubmitRequest,
  WorkerRegistration,
  type WireError
} from "./protocol.ts"

/**
 * What the HTTP layer needs from whoever hosts trackers: core's TrackerHost has it; `registerWorker` only
 * where worker processes register (a tracker server), else the route answers 400.
 */
export interface TrackerApi extends Pick<TrackerHost, "tracker" | "submit"> {
  /** Live instances, then finished ones, newest first; where the host can list them. */
  readonly list?: TrackerHost["list"]
  /** The Prometheus text of `GET /metrics` (wire/metrics-text.ts), where the host has one. */
  readonly metrics?: () => Effect.Effect<string>
  /** The tracker's own worker: no credential acts as it over the wire (R-WIRE-4). */
  readonly localWorkerId?: string
  /** A worker says where it can be reached; answers the live instances it should join. */
  readonly registerWorker?: (
    registration: WorkerRegistration
  ) => Effect.Effect<{ readonly instances: ReadonlyArray<string> }, RejectedError>
}

export interface AppOptions {
  /**
   * The secret (R-WIRE-2). The worker's app takes it as the one bearer token it accepts; the tracker's app takes
   * it as the operator's credential and checks workers' credentials under it (R-WIRE-4, credentials.ts).
   */
  readonly token: string
  /** The tracker's app only: secrets being rotated out, still accepted until removed (credentials.ts). */
  readonly previousTokens?: ReadonlyArray<string>
  readonly maxBodyBytes?: number
  /**
   * How long a map call held by back-pressure waits before it is answered "suspended" and sent again by the
   * worker: below any client's timeout, so a suspended call never times out on the way (R-MAP-6). Default 10 s.
   */
  readonly mapWaitMs?: number
}

type AnyError = RejectedError | ConfigError | StoreError | TransportError

const statusOf = (error: AnyError): 400 | 404 | 409 | 429 | 502 | 503 => {
  if (error instanceof RejectedError) {
    // Past a count the tracker bounds: the same call may succeed later.
    if (error.reason === "too-many-instances" || error.reason === "worker-limit") return 429
    return error.reason === "unknown-instance" || error.reason === "unknown-task"
      ? 404
      : error.reason === "bad-input"
        ? 400
        : 409
  }
  if (error instanceof ConfigError) return 400
  if (error instanceof StoreError) return 503
  return 502
}

export const wireError = (tag: string, reason: string, message: string, path?: string): WireError => ({
  error: path === undefined ? { tag, reason, message } : { tag, reason, message, path }
})

const json = (
  c: Context,
  value: unknown,
  status: 200 | 202 | 400 | 401 | 403 | 404 | 409 | 413 | 429 | 502 | 503 = 200
) => c.body(encodeJson(value), status, { "content-type": "application/json" })

const constantTimeEqual = (a: string, b: string): boolean => {
  let diff = a.length ^ b.length
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0)
  return diff === 0
}

/** Who made the request, as the tracker's app checked it (R-WIRE-4): for routes an adapter adds. */
export const callerOf = (c: Context): Caller | undefined => c.get("taskfoldCaller" as never) as Caller | undefined

const forbidden = (c: Context, message: string) => json(c, wireError("Forbidden", "forbidden", message), 403)

/** A 403 unless the operator called. */
export const operatorOnly = (c: Context): Response | undefined =>
  callerOf(c)?.role === "operator" ? undefined : forbidden(c, "this call needs the operator's credential")

/** A 403 unless worker `workerId` called with its own credential, and it is not the tracker's own worker. */
export const asWorker = (c: Context, workerId: string, localWorkerId?: string): Response | undefined => {
  const caller = callerOf(c)
  if (caller?.role !== "worker") return forbidden(c, "only a worker makes this call, with its own credential")
  if (caller.workerId !== workerId)
    return forbidden(c, `the credential is worker ${caller.workerId}'s; it cannot act as worker ${workerId}`)
  if (workerId === localWorkerId) return forbidden(c, `worker ${workerId} is the tracker's own`)
  return undefined
}

/**
 * Auth, body limit and JSON errors shared by the tracker's and the worker's apps. With `authorize`, any
 * credential it accepts is let in and remembered for the routes to check; without, only `Bearer <token>`.
 */
const tooLarge = (limit: number) =>
  bodyLimit({
    maxSize: limit,
    onError: (c) => json(c, wireError("TooLarge", "too-large", `bodies are limited to ${limit} bytes`), 413)
  })

export const guardedApp = (options: AppOptions, authorize?: (header: string) => Promise<Caller | undefined>): Hono => {
  const app = new Hono()
  const expected = `Bearer ${options.token}`
  app.use("*", async (c, next) => {
    const header = c.req.header("authorization") ?? ""
    const caller =
      authorize === undefined
        ? constantTimeEqual(header, expected)
          ? ({ role: "operator" } as const)
          : undefined
        : await authorize(header)
    if (caller === undefined) {
      return json(c, wireError("Unauthorized", "unauthorized", "a valid bearer token is required"), 401)
    }
    c.set("taskfoldCaller" as never, caller as never)
    await next()
  })
  const limit = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  app.use("*", tooLarge(limit))
  app.notFound((c) => json(c, wireError("NotFound", "no-route", `no route ${c.req.method} ${c.req.path}`), 404))
  // Whatever slips through is answered, never left to crash the process (R-WIRE-3).
  app.onError((error, c) => json(c, wireError("BadRequest", "bad-input", error.message), 400))
  return app
}

/** Reads and decodes a JSON body; a failure is a 400 naming the bad field (R-WIRE-1). */
export const readMessage = async <S extends Schema.Top & { readonly DecodingServices: never }>(
  c: Context,
  schema: S
): Promise<{ ok: true; value: S["Type"] } | { ok: false; response: Response }> => {
  let parsed: unknown
  try {
    parsed = parseJson(await c.req.text())
  } catch (error) {
    return {
      ok: false,
      response: json(c, wireError("DecodeError", "bad-json", error instanceof Error ? error.message : "not JSON"), 400)
    }
  }
  const decoded = await Effect.runPromise(Effect.result(decodeMessage(schema, parsed)))
  if (decoded._tag === "Failure") {
    return {
      ok: false,
      response: json(c, wireError("DecodeError", "bad-field", decoded.failure.message, decoded.failure.path), 400)
    }
  }
  return { ok: true, value: decoded.success }
}

export const answer = async <A>(
  c: Context,
  effect: Effect.Effect<A, AnyError>,
  status: 200 | 202 = 200
): Promise<Response> => {
  const result = await Effect.runPromise(Effect.result(effect))
  if (result._tag === "Success") return json(c, result.success ?? null, status)
  const error = result.failure
  return json(c, wireError(error._tag, error.reason, error.message), statusOf(error))
}

/**
 * The tracker side of the protocol: submit, status, kill, and every worker → tracker message.
 * Every body is decoded with the core's Schemas; a message whose instanceId differs from the URL's is refused.
 */
export const makeTrackerApp = (host: TrackerApi, options: AppOptions): Hono => {
  const app = guardedApp(options, makeCredentialCheck(options.token, options.previousTokens))
  // Messages without bodies or results need little room: a large one is an abuse, refused before it is read.
  const small = tooLarge(Math.min(options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, SMALL_BODY_BYTES))
  for (const path of ["/v1/workers", ...["heartbeat", "pull", "kill"].map((call) => `/v1/instances/:id/${call}`)])
    app.use(path, small)

  app.post("/v1/instances", async (c) => {
    const refused = operatorOnly(c)
    if (refused !== undefined) return refused
    const request = await readMessage(c, SubmitRequest)
    return request.ok ? answer(c, host.submit(request.value)) : request.response
  })

  // Prometheus text, for a scraper holding the operator's credential (`authorization: Bearer <secret>`).
  app.get("/metrics", async (c) => {
    const refused = operatorOnly(c)
    if (refused !== undefined) return refused
    if (host.metrics === undefined) return json(c, wireError("NotFound", "no-route", "this host has no metrics"), 404)
    const text = await Effect.runPromise(host.metrics())
    return c.body(text, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" })
  })

  // The instance list: `?job=` and `?state=` (running, succeeded, failed) filter, `?limit=` bounds (default 100).
  app.get("/v1/instances", async (c) => {
    const refused = operatorOnly(c)
    if (refused !== undefined) return refused
    const decoded = await Effect.runPromise(
      Effect.result(
        decodeMessage(ListQuery, {
          limit: Number(c.req.query("limit") ?? 100),
          ...(c.req.query("job") === undefined ? {} : { job: c.req.query("job") }),
          ...(c.req.query("state") === undefined ? {} : { state: c.req.query("state") })
        })
      )
    )
    if (decoded._tag === "Failure")
      return json(c, wireError("DecodeError", "bad-field", decoded.failure.message, decoded.failure.path), 400)
    const { limit, job, state } = decoded.success
    const list = host.list
    if (list === undefined)
      return json(c, wireError("RejectedError", "bad-input", "this host does not list its instances"), 400)
    return answer(
      c,
      // Filtered after reading: a filter never hides an instance the limit would have shown.
      list(job === undefined && state === undefined ? limit : 10_000).pipe(
        Effect.map((all) => ({
          instances: all
            .filter(
              (entry) => (job === undefined || entry.job === job) && (state === undefined || entry.state === state)
            )
            .slice(0, limit)
        }))
      )
    )
  })

  app.get(
    "/v1/instances/:id",
    (c) =>
      operatorOnly(c) ??
      answer(
        c,
        host.tracker(c.req.param("id")).pipe(
          Effect.flatMap((tracker) => tracker.progress),
          Effect.map((progress) => ({ instanceId: progress.instanceId, progress, outcome: progress.outcome }))
        )
      )
  )

  const instanceCall = <
    S extends Schema.Top & {
      readonly DecodingServices: never
      readonly Type: { readonly instanceId: string; readonly workerId: string }
    },
    A
  >(
    call: string,
    schema: S,
    run: (tracker: Tracker, message: S["Type"]) => Effect.Effect<A, AnyError>
  ) =>
    app.post(`/v1/instances/:id/${call}`, async (c) => {
      const message = await readMessage(c, schema)
      if (!message.ok) return message.response
      // A worker speaks only for itself, and only for tasks placed on it (the machine checks those).
      const refused = asWorker(c, message.value.workerId, host.localWorkerId)
      if (refused !== undefined) return refused
      const id = c.req.param("id")
      if (message.value.instanceId !== id) {
        return json(
          c,
          wireError(
            "DecodeError",
            "bad-field",
            `instanceId ${message.value.instanceId} does not match the URL's ${id}`,
            '["instanceId"]'
          ),
          400
        )
      }
      return answer(
        c,
        Effect.flatMap(host.tracker(id), (tracker) => run(tracker, message.value))
      )
    })

  instanceCall("reports", ReportBatch, (tracker, batch) =>
    tracker.report(batch).pipe(
      Effect.map((reply) => ({
        applied: reply.applied,
        dropped: reply.dropped,
        rejected: reply.rejected.map(({ taskId, error }) => ({ taskId, reason: error.reason, message: error.message }))
      }))
    )
  )
  const mapWait = Duration.millis(options.mapWaitMs ?? 10_000)
  instanceCall("map", MapRequest, (tracker, request) =>
    tracker.map(request).pipe(
      Effect.map((created): { created?: number; suspended?: boolean } => ({ created })),
      Effect.timeoutOrElse({ duration: mapWait, orElse: () => Effect.succeed({ suspended: true }) })
    )
  )
  instanceCall("heartbeat", Heartbeat, (tracker, heartbeat) => tracker.heartbeat(heartbeat))
  instanceCall("pull", PullRequest, (tracker, request) =>
    tracker.pull(request).pipe(Effect.map((batch) => ({ batch })))
  )
  instanceCall("context", ContextAppend, (tracker, request) =>
    tracker.appendContext(request).pipe(Effect.map((accepted) => ({ accepted })))
  )

  app.post("/v1/instances/:id/kill", async (c) => {
    const refused = operatorOnly(c)
    if (refused !== undefined) return refused
    const body = await readMessage(c, KillBody)
    if (!body.ok) return body.response
    return answer(
      c,
      Effect.flatMap(host.tracker(c.req.param("id")), (tracker) =>
        tracker.kill(body.value.taskId, body.value.reason).pipe(Effect.as({}))
      )
    )
  })

  // Results: the operator, and the workers of this instance, one of which runs its reduce or postProcess
  // when that worker is remote; a worker of another instance, or of none, reads nothing (R-WIRE-4).
  app.get("/v1/instances/:id/results", async (c) => {
    const caller = callerOf(c)
    if (caller?.role === "worker") {
      const joined = await Effect.runPromise(
        Effect.result(Effect.flatMap(host.tracker(c.req.param("id")), (tracker) => tracker.progress))
      )
      if (joined._tag === "Success" && joined.success.byWorker[caller.workerId] === undefined)
        return forbidden(c, `worker ${caller.workerId} has not joined instance ${c.req.param("id")}`)
    }
    const query = {
      run: Number(c.req.query("run") ?? 0),
      afterSeq: Number(c.req.query("afterSeq") ?? -1),
      limit: Number(c.req.query("limit") ?? 1000)
    }
    const decoded = await Effect.runPromise(Effect.result(decodeMessage(ResultsQuery, query)))
    if (decoded._tag === "Failure")
      return json(c, wireError("DecodeError", "bad-field", decoded.failure.message, decoded.failure.path), 400)
    const { run, afterSeq, limit } = decoded.success
    return answer(
      c,
      Effect.flatMap(host.tracker(c.req.param("id")), (tracker) => tracker.readResults(run, afterSeq, limit)).pipe(
        Effect.map((results) => ({ results }))
      )
    )
  })

  app.post("/v1/workers", async (c) => {
    const registration = await readMessage(c, WorkerRegistration)
    if (!registration.ok) return registration.response
    const refused = asWorker(c, registration.value.workerId, host.localWorkerId)
    if (refused !== undefined) return refused
    const register = host.registerWorker
    return answer(
      c,
      register === undefined
        ? Effect.fail(new RejectedError({ reason: "bad-input", message: "workers do not register with this host" }))
        : register(registration.value)
    )
  })

  return app
}
