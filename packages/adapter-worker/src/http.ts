/**
 * The wire protocol: JSON codecs for core's messages (bytes bodies as base64), the tracker's HTTP
 * endpoints on hono, and a TrackerLink client over an injected `fetch`. Nothing here is specific to
 * Durable Objects: the object mounts these routes, lanes use the client.
 */
import {
  ContextAppend,
  Heartbeat,
  KillRequest,
  MapRequest,
  PullRequest,
  RejectedError,
  ReportBatch,
  StoreError,
  TaskBatch,
  TransportError,
  type ReportsReply,
  type StoredResult,
  type TaskBody,
  type Tracker,
  type TrackerError,
  type TrackerLink
} from "@taskfold/core"
import { Cause, Effect, Exit, Option, Result, Schema, SchemaIssue } from "effect"
import { Hono, type Context, type MiddlewareHandler } from "hono"
import { bodyLimit } from "hono/body-limit"

// ---------------------------------------------------------------------------------------------------------
// Bodies: JSON text stays a string, bytes travel as { "$bytes": "<base64>" }.

export type JsonBody = string | { readonly $bytes: string }

const toBase64 = (bytes: Uint8Array): string => {
  let text = ""
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(text)
}

const fromBase64 = (text: string): Uint8Array<ArrayBuffer> => {
  const binary = atob(text)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

export const encodeBody = (body: TaskBody): JsonBody => (typeof body === "string" ? body : { $bytes: toBase64(body) })

/** A `{ $bytes }` object becomes bytes; anything else is left for the schema to judge. */
const reviveBody = (value: unknown): unknown => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return value
  const bytes = (value as { $bytes?: unknown }).$bytes
  if (typeof bytes !== "string" || Object.keys(value).length !== 1) return value
  try {
    return fromBase64(bytes)
  } catch {
    return value
  }
}

const mapArray = (value: unknown, key: string, f: (item: unknown) => unknown): unknown => {
  if (typeof value !== "object" || value === null) return value
  const list = (value as Record<string, unknown>)[key]
  return Array.isArray(list) ? { ...value, [key]: list.map(f) } : value
}

const reviveMapRequest = (value: unknown) => mapArray(value, "bodies", reviveBody)
const reviveTaskBatch = (value: unknown) =>
  mapArray(value, "tasks", (task) =>
    typeof task === "object" && task !== null ? { ...task, body: reviveBody((task as { body?: unknown }).body) } : task
  )

export const encodeTaskBatch = (batch: TaskBatch) => ({ ...batch, tasks: batch.tasks.map((task) => ({ ...task, body: encodeBody(task.body) })) })
export const encodeMapRequest = (request: MapRequest) => ({ ...request, bodies: request.bodies.map(encodeBody) })

// ---------------------------------------------------------------------------------------------------------
// Decoding with core's schemas: a failure names the path of every bad field (R-WIRE-1).

export interface DecodeIssue {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

export class DecodeFailure {
  readonly _tag = "DecodeError"
  readonly issues: ReadonlyArray<DecodeIssue>
  constructor(issues: ReadonlyArray<DecodeIssue>) {
    this.issues = issues
  }
  get message(): string {
    return this.issues.map((issue) => `${issue.path.map((key) => `[${JSON.stringify(key)}]`).join("") || "(root)"}: ${issue.message}`).join("; ")
  }
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

export const decoder =
  <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, revive: (value: unknown) => unknown = (value) => value) =>
  (value: unknown): Result.Result<S["Type"], DecodeFailure> => {
    const result = Schema.decodeUnknownResult(schema as never)(revive(value), { errors: "all" }) as Result.Result<S["Type"], Schema.SchemaError>
    if (Result.isSuccess(result)) return Result.succeed(result.success)
    const issues = formatter(result.failure.issue).issues.map((issue) => ({
      path: (issue.path ?? []).map((key) => (typeof key === "object" ? (key as { key: PropertyKey }).key : key)),
      message: issue.message
    }))
    return Result.fail(new DecodeFailure(issues))
  }

export const decodeReportBatch = decoder(ReportBatch)
export const decodeMapRequest = decoder(MapRequest, reviveMapRequest)
export const decodeHeartbeat = decoder(Heartbeat)
export const decodePullRequest = decoder(PullRequest)
export const decodeContextAppend = decoder(ContextAppend)
export const decodeKillRequest = decoder(KillRequest)
export const decodeTaskBatch = decoder(TaskBatch, reviveTaskBatch)

// ---------------------------------------------------------------------------------------------------------
// Errors on the wire.

export interface WireErrorBody {
  readonly error: {
    readonly _tag: string
    readonly reason?: string
    readonly message: string
    readonly issues?: ReadonlyArray<DecodeIssue>
  }
}

/** The HTTP status of a refusal: unknown instance or task 404, bad input 400, any other rule 409, the store 503. */
export const statusOf = (error: TrackerError): 400 | 404 | 409 | 503 =>
  error instanceof StoreError ? 503 : error.reason === "unknown-instance" || error.reason === "unknown-task" ? 404 : error.reason === "bad-input" ? 400 : 409

export const errorJson = (c: Context, error: TrackerError | DecodeFailure, status?: number): Response => {
  const body: WireErrorBody =
    error instanceof DecodeFailure
      ? { error: { _tag: "DecodeError", message: error.message, issues: error.issues } }
      : { error: { _tag: error._tag, reason: error.reason, message: error.message } }
  return c.json(body, (status ?? (error instanceof DecodeFailure ? 400 : statusOf(error))) as 400)
}

const rejectedReasons = new Set<string>(RejectedError.fields.reason.literals)
const storeReasons = new Set<string>(StoreError.fields.reason.literals)

/** The error an answer carries, as the tagged error a worker runtime expects. */
export const errorFromResponse = async (response: Response): Promise<RejectedError | StoreError | TransportError> => {
  let body: Partial<WireErrorBody> | null = null
  try {
    body = (await response.json()) as Partial<WireErrorBody>
  } catch {
    body = null
  }
  const error = body?.error
  const message = error?.message ?? `HTTP ${response.status}`
  if (error?._tag === "RejectedError" && error.reason !== undefined && rejectedReasons.has(error.reason)) {
    return new RejectedError({ reason: error.reason as RejectedError["reason"], message })
  }
  if (error?._tag === "StoreError" && error.reason !== undefined && storeReasons.has(error.reason)) {
    return new StoreError({ reason: error.reason as StoreError["reason"], message })
  }
  if (response.status === 404) return new RejectedError({ reason: "unknown-instance", message })
  return new TransportError({ reason: response.status >= 500 ? "unreachable" : "rejected", message: `HTTP ${response.status}: ${message}` })
}

// ---------------------------------------------------------------------------------------------------------
// Trust: a shared secret and a body size limit on every endpoint (R-WIRE-2).

export const AUTHORIZATION = "authorization"
export const bearer = (secret: string) => `Bearer ${secret}`

/** Compares in time that depends on the length only. */
const sameText = (a: string, b: string): boolean => {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return diff === 0
}

/** workerd wants a request body read or cancelled before the answer goes out. */
const discardBody = async (c: Context): Promise<void> => {
  try {
    await c.req.raw.body?.cancel()
  } catch {
    // already read or locked: nothing left to discard
  }
}

export interface GuardOptions {
  /** The shared secret; a deployment without one refuses every call. */
  readonly secret: (c: Context) => string | undefined
  readonly maxBodyBytes: number
}

/** 401 without the secret (checked before the body is read), then 413 for a body over the limit. */
export const guard = (options: GuardOptions): MiddlewareHandler[] => [
  async (c, next) => {
    const secret = options.secret(c)
    const given = c.req.header(AUTHORIZATION) ?? ""
    if (secret === undefined || secret === "" || !sameText(given, bearer(secret))) {
      await discardBody(c)
      return c.json({ error: { _tag: "Unauthorized", message: "a valid Authorization: Bearer <secret> header is required" } }, 401)
    }
    await next()
  },
  bodyLimit({
    maxSize: options.maxBodyBytes,
    onError: async (c) => {
      await discardBody(c)
      return c.json({ error: { _tag: "PayloadTooLarge", message: `the body is larger than ${options.maxBodyBytes} bytes` } }, 413)
    }
  })
]

// ---------------------------------------------------------------------------------------------------------
// The tracker's endpoints.

const readJson = async (c: Context): Promise<Result.Result<unknown, DecodeFailure>> => {
  try {
    return Result.succeed(await c.req.json())
  } catch {
    return Result.fail(new DecodeFailure([{ path: [], message: "the body is not JSON" }]))
  }
}

/** Finds the tracker an instance id names; undefined answers 404. */
export type TrackerLookup = (instanceId: string, c: Context) => Tracker | undefined | Promise<Tracker | undefined>

/** Runs a tracker call and answers with its value as JSON, or with its refusal (404, 409, 503). */
export const answerWith = async <A>(c: Context, effect: Effect.Effect<A, TrackerError>, answer: (value: A) => unknown): Promise<Response> => {
  const exit = await Effect.runPromiseExit(effect)
  if (Exit.isSuccess(exit)) return c.json(answer(exit.value) as object)
  const failure = Cause.findErrorOption(exit.cause)
  if (Option.isSome(failure)) return errorJson(c, failure.value)
  throw new Error(`tracker call died: ${String(exit.cause)}`)
}

const encodeReportsReply = (reply: ReportsReply) => ({
  applied: reply.applied,
  dropped: reply.dropped,
  unknown: reply.unknown,
  rejected: reply.rejected.map(({ taskId, error }) => ({ taskId, reason: error.reason, message: error.message }))
})

/**
 * Mounts the tracker endpoints on `app`, each under `/instances/:id`: `reports`, `map`, `heartbeat`, `pull`,
 * `context` (POST, a message as JSON), `results` (GET ?run&afterSeq&limit) and `kill` (POST KillRequest).
 * Every message is decoded with core's schema; a bad one answers 400 with the path of each bad field and
 * reaches no tracker (R-WIRE-1).
 */
export const trackerRoutes = <E extends { Bindings?: object }>(app: Hono<E>, lookup: TrackerLookup): Hono<E> => {
  const withTracker = async (c: Context, f: (tracker: Tracker) => Promise<Response>): Promise<Response> => {
    const instanceId = c.req.param("id") ?? ""
    const tracker = await lookup(instanceId, c)
    if (tracker === undefined || tracker.instanceId !== instanceId) {
      return errorJson(c, new RejectedError({ reason: "unknown-instance", message: `no live instance ${instanceId} here` }))
    }
    return f(tracker)
  }
  const post = <A>(path: string, decode: (value: unknown) => Result.Result<A, DecodeFailure>, handle: (c: Context, tracker: Tracker, message: A) => Promise<Response>) =>
    app.post(`/instances/:id/${path}`, (c) =>
      withTracker(c, async (tracker) => {
        const json = await readJson(c)
        if (Result.isFailure(json)) return errorJson(c, json.failure)
        const message = decode(json.success)
        if (Result.isFailure(message)) return errorJson(c, message.failure)
        return handle(c, tracker, message.success)
      })
    )

  post("reports", decodeReportBatch, (c, tracker, batch) => answerWith(c, tracker.report(batch), encodeReportsReply))
  post("map", decodeMapRequest, (c, tracker, request) => answerWith(c, tracker.map(request), (created) => ({ created })))
  post("heartbeat", decodeHeartbeat, (c, tracker, heartbeat) => answerWith(c, tracker.heartbeat(heartbeat), () => ({})))
  post("pull", decodePullRequest, (c, tracker, request) =>
    answerWith(c, tracker.pull(request), (batch) => ({ batch: batch === null ? null : encodeTaskBatch(batch) }))
  )
  post("context", decodeContextAppend, (c, tracker, request) => answerWith(c, tracker.appendContext(request), (accepted) => ({ accepted })))
  post("kill", decodeKillRequest, (c, tracker, request) => {
    if (request.instanceId !== tracker.instanceId) {
      return Promise.resolve(errorJson(c, new RejectedError({ reason: "unknown-instance", message: `this is ${tracker.instanceId}` })))
    }
    return answerWith(c, tracker.kill(request.taskId, request.reason), () => ({}))
  })
  app.get("/instances/:id/results", (c) =>
    withTracker(c, (tracker) => {
      const number = (key: string, fallback: number) => {
        const text = c.req.query(key)
        const value = text === undefined ? fallback : Number(text)
        return Number.isSafeInteger(value) ? value : Number.NaN
      }
      const run_ = number("run", 0)
      const afterSeq = number("afterSeq", -1)
      const limit = Math.min(number("limit", 1_000), 10_000)
      const bad = [
        ...(Number.isNaN(run_) || run_ < 0 ? [{ path: ["run"], message: "Expected a non-negative integer" }] : []),
        ...(Number.isNaN(afterSeq) || afterSeq < -1 ? [{ path: ["afterSeq"], message: "Expected an integer ≥ -1" }] : []),
        ...(Number.isNaN(limit) || limit < 1 ? [{ path: ["limit"], message: "Expected a positive integer" }] : [])
      ]
      if (bad.length > 0) return Promise.resolve(errorJson(c, new DecodeFailure(bad)))
      return answerWith(c, tracker.readResults(run_, afterSeq, limit), (results) => ({ results }))
    })
  )
  return app
}

// ---------------------------------------------------------------------------------------------------------
// The client: a TrackerLink over HTTP.

export type Fetch = (request: Request) => Promise<Response>

export interface HttpLinkOptions {
  readonly fetch: Fetch
  /** Where the `/instances/...` routes are, e.g. `https://tracker`. */
  readonly baseUrl: string
  readonly secret: string
  readonly instanceId: string
}

/** Calls one endpoint; a network failure is a TransportError, a refusal the error the answer names. */
export const callJson = <A>(
  options: Pick<HttpLinkOptions, "fetch" | "secret">,
  url: string,
  body: unknown,
  read: (json: unknown) => A
): Effect.Effect<A, RejectedError | StoreError | TransportError> =>
  Effect.tryPromise({
    try: async () => {
      const init: RequestInit =
        body === undefined
          ? { method: "GET", headers: { [AUTHORIZATION]: bearer(options.secret) } }
          : { method: "POST", headers: { [AUTHORIZATION]: bearer(options.secret), "content-type": "application/json" }, body: JSON.stringify(body) }
      const response = await options.fetch(new Request(url, init))
      if (!response.ok) return { failed: await errorFromResponse(response) } as const
      return { value: read(await response.json()) } as const
    },
    catch: (cause) => new TransportError({ reason: "unreachable", message: cause instanceof Error ? cause.message : String(cause) })
  }).pipe(Effect.flatMap((outcome) => ("failed" in outcome ? Effect.fail(outcome.failed) : Effect.succeed(outcome.value))))

const decodeReportsReply = (json: unknown): ReportsReply => {
  const reply = json as { applied: number; dropped: number; unknown: string[]; rejected: Array<{ taskId: string; reason: string; message: string }> }
  return {
    applied: reply.applied,
    dropped: reply.dropped,
    unknown: reply.unknown,
    rejected: reply.rejected.map(({ taskId, reason, message }) => ({
      taskId,
      error: new RejectedError({ reason: (rejectedReasons.has(reason) ? reason : "bad-input") as RejectedError["reason"], message })
    }))
  }
}

/** A worker's link to the tracker of one instance, over HTTP. */
export const httpTrackerLink = (options: HttpLinkOptions): TrackerLink => {
  const base = `${options.baseUrl.replace(/\/$/, "")}/instances/${encodeURIComponent(options.instanceId)}`
  return {
    report: (batch) => callJson(options, `${base}/reports`, batch, decodeReportsReply),
    map: (request) => callJson(options, `${base}/map`, encodeMapRequest(request), (json) => (json as { created: number }).created),
    heartbeat: (heartbeat) => callJson(options, `${base}/heartbeat`, heartbeat, () => undefined),
    appendContext: (request) => callJson(options, `${base}/context`, request, (json) => (json as { accepted: boolean }).accepted),
    readResults: (run_, afterSeq, limit) =>
      callJson(options, `${base}/results?run=${run_}&afterSeq=${afterSeq}&limit=${limit}`, undefined, (json) => (json as { results: StoredResult[] }).results)
  }
}
