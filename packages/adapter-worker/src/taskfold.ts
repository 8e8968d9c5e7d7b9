/**
 * taskfold on Cloudflare: one Durable Object per instance is its tracker (its SQLite is the store, its one
 * alarm the tracker's timer), and sub-tasks run in lanes: Worker invocations reached through a service
 * binding (see lanes.ts). `taskfold(options)` gives the Durable Object class to export and the Worker's
 * fetch handler.
 */
import {
  ConfigError,
  resolveConfig,
  resumeTracker,
  startTracker,
  TaskStore,
  Transport,
  TransportError,
  type Job,
  type JobConfig,
  type JobConfigOverrides,
  type NewTrackerOptions,
  type Outcome,
  type RejectedError,
  type StoreError,
  type TaskStoreShape,
  type Tracker,
  type TransportShape
} from "@taskfold/core"
import { DurableObject } from "cloudflare:workers"
import { Effect, Exit, Result, Schema, Scope } from "effect"
import { Hono, type Context } from "hono"
import {
  answerWith,
  AUTHORIZATION,
  bearer,
  callJson,
  DecodeFailure,
  decoder,
  errorJson,
  guard,
  httpTrackerLink,
  trackerRoutes,
  type Fetch
} from "./http.ts"
import {
  decodeLaneStart,
  decodePollReply,
  encodeLaneStart,
  encodePollReply,
  LANE_DONE,
  LaneHeartbeatSchema,
  LanePollSchema,
  makeLaneSet,
  runLane,
  type LaneSet
} from "./lanes.ts"
import { makeLocalWorker, type LocalWorker } from "./local.ts"
import { busyWorkers, makeOutcomeTable, makeSqlStore, readInstanceRow } from "./sql-store.ts"
import { decodeHeartbeat } from "./http.ts"

export interface TaskfoldOptions {
  /** The jobs this deployment runs; instances name one of them. */
  readonly jobs: ReadonlyArray<Job>
  /** Lanes (Worker invocations running sub-tasks at once) per instance. Default 4. */
  readonly lanes?: number
  /** Slots of a lane: sub-tasks one invocation runs at once. Default 16. */
  readonly laneSlots?: number
  /** Slots of the worker inside the object, which runs the root and final tasks. Default 4. */
  readonly localSlots?: number
  /** Largest request body accepted, in bytes; larger ones answer 413. Default 8 MiB. */
  readonly maxBodyBytes?: number
  /** How long a lane's poll waits for work before it answers empty. Default 1,000 ms. */
  readonly pollWaitMs?: number
  /**
   * Config defaults for every instance of this deployment, under the job's own config and the submitted one.
   * `localWorker: "exclude"` is always the base: sub-tasks run in lanes, not in the object (R-DISP-5).
   */
  readonly config?: JobConfigOverrides
  /** Binding names in the Worker's env. */
  readonly bindings?: {
    /** The Durable Object namespace of the tracker class. Default "TRACKER". */
    readonly tracker?: string
    /** A service binding to this same Worker, where lanes start. Default "WORKERS". */
    readonly workers?: string
    /** The shared secret every call must carry as `Authorization: Bearer …`. Default "TASKFOLD_SECRET". */
    readonly secret?: string
  }
  /** Called in the object once an instance's outcome is stored; a throw makes the tracker deliver it again (R-FIN-6). */
  readonly onOutcome?: (instanceId: string, outcome: Outcome) => void | Promise<void>
}

/** The worker id of the worker inside the object: root, final and broadcast preProcess run there. */
export const LOCAL_WORKER = "local"

type Env = Record<string, unknown>

const Id = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(256))
export const SubmitRequest = Schema.Struct({
  job: Id,
  params: Schema.optionalKey(Schema.Json),
  config: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown)),
  instanceId: Schema.optionalKey(Id)
})
export type SubmitRequest = typeof SubmitRequest.Type
const decodeSubmit = decoder(SubmitRequest)
const decodeLanePoll = decoder(LanePollSchema)
const decodeLaneHeartbeat = decoder(LaneHeartbeatSchema)

/** Everything that lives in the object while it runs an instance. */
interface Host {
  readonly instanceId: string
  readonly job: string
  readonly scope: Scope.Closeable
  tracker: Tracker | undefined
  local: LocalWorker | undefined
  lanes: LaneSet
  /** The time the object's alarm is set for (null: none set by this incarnation). */
  armedAt: number | null
  /** Resolved after the tracker's next step. */
  stepWaiters: Array<() => void>
  closed: boolean
}

/** Resolves with `promise` or after `ms`, leaving no timer behind (a pending timer keeps an object from being evicted). */
const atMost = (promise: Promise<void>, ms: number): Promise<void> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => {
    if (timer !== undefined) clearTimeout(timer)
  })
}

const failureJson = (c: Context, status: 400 | 409, tag: string, message: string, path?: ReadonlyArray<PropertyKey>) =>
  c.json({ error: { _tag: tag, message, ...(path === undefined ? {} : { issues: [{ path, message }] }) } }, status)

/** The Durable Object class and the Worker handler of a taskfold deployment. */
export const taskfold = (options: TaskfoldOptions) => {
  const settings = {
    lanes: options.lanes ?? 4,
    laneSlots: options.laneSlots ?? 16,
    localSlots: options.localSlots ?? 4,
    maxBodyBytes: options.maxBodyBytes ?? 8 * 1024 * 1024,
    pollWaitMs: options.pollWaitMs ?? 1_000
  }
  const names = { tracker: "TRACKER", workers: "WORKERS", secret: "TASKFOLD_SECRET", ...options.bindings }
  const jobs = new Map(options.jobs.map((job) => [job.name, job]))
  const jobOf = (name: string) => jobs.get(name)
  const secretOf = (env: Env) => (typeof env[names.secret] === "string" ? (env[names.secret] as string) : undefined)
  const stubOf = (env: Env, instanceId: string) => {
    const namespace = env[names.tracker] as DurableObjectNamespace | undefined
    if (namespace === undefined) throw new Error(`no Durable Object binding ${names.tracker} in env`)
    return namespace.get(namespace.idFromName(instanceId))
  }
  const guards = guard({ secret: (c) => secretOf(c.env as Env), maxBodyBytes: settings.maxBodyBytes })

  /** The tracker of one instance. Export it under the class name your wrangler config binds. */
  class TaskfoldTracker extends DurableObject<Env> {
    readonly #store: TaskStoreShape
    readonly #outcomes: ReturnType<typeof makeOutcomeTable>
    readonly #app: Hono<{ Bindings: Env }>
    #host: Host | undefined
    #starting = false

    constructor(ctx: DurableObjectState, env: Env) {
      super(ctx, env)
      this.#store = makeSqlStore(ctx.storage)
      this.#outcomes = makeOutcomeTable(ctx.storage.sql)
      this.#app = this.#routes()
      // After an eviction or a restart, the instance resumes from SQLite before any request or alarm is let in (R-REC-1).
      void ctx.blockConcurrencyWhile(() => this.#resume())
    }

    override fetch(request: Request): Response | Promise<Response> {
      // Idle lanes heartbeat through the object while it is awake; between requests the alarm does it.
      const host = this.#host
      if (host !== undefined && !host.closed) void Effect.runPromise(host.lanes.refreshIfStale)
      return this.#app.fetch(request, this.env)
    }

    /**
     * The tracker's timer. Idempotent: it ticks the tracker, which does whatever is due by now (nothing, if
     * the alarm came early or twice), and the step's next wake-up time arms the alarm again.
     */
    override async alarm(): Promise<void> {
      const host = this.#host
      if (host === undefined || host.closed || host.tracker === undefined) return
      host.armedAt = null
      await Effect.runPromise(host.lanes.refresh)
      const stepped = new Promise<void>((resolve) => host.stepWaiters.push(resolve))
      await Effect.runPromise(host.tracker.tick)
      await atMost(stepped, 10_000)
    }

    /** The instance this object runs (for tests and tools). */
    get instance(): { readonly instanceId: string; readonly tracker: Tracker | undefined } | undefined {
      return this.#host === undefined ? undefined : { instanceId: this.#host.instanceId, tracker: this.#host.tracker }
    }

    async #resume(): Promise<void> {
      const ids = Effect.runSync(Effect.orElseSucceed(this.#store.listInstances(), () => [] as ReadonlyArray<string>))
      const instanceId = ids[0]
      if (instanceId === undefined) return
      const row = readInstanceRow(this.ctx.storage.sql, instanceId)
      if (row === undefined) return
      if (row.outcome !== null) this.#recordOutcome(instanceId, row.job, row.outcome, undefined)
      try {
        this.#host = await this.#startHost(instanceId, row.job, row.config, true, (hooks) => resumeTracker(instanceId, LOCAL_WORKER, hooks))
      } catch (error) {
        console.error(`taskfold: could not resume ${instanceId}:`, error)
      }
    }

    #recordOutcome(instanceId: string, job: string, outcome: Outcome, host: Host | undefined): void {
      const tracker = host?.tracker
      const progress = tracker === undefined ? null : Effect.runSync(tracker.progress)
      this.#outcomes.write({ instanceId, job, outcome, progress })
    }

    /** A new alarm time from the tracker; only a change touches storage. */
    #wake(host: Host, at: number | null): void {
      for (const resolve of host.stepWaiters.splice(0)) resolve()
      if (host.closed || at === host.armedAt) return
      host.armedAt = at
      const done = at === null ? this.ctx.storage.deleteAlarm() : this.ctx.storage.setAlarm(at)
      done.catch((error: unknown) => console.error("taskfold: could not set the alarm:", error))
    }

    #close(host: Host): void {
      if (host.closed) return
      host.closed = true
      host.lanes.close()
      host.local?.close()
      if (this.#host === host) this.#host = undefined
      this.ctx.storage.deleteAlarm().catch(() => undefined)
      void Effect.runPromise(Scope.close(host.scope, Exit.void))
    }

    async #startHost(
      instanceId: string,
      job: string,
      config: JobConfig,
      resumed: boolean,
      make: (hooks: Pick<NewTrackerOptions, "onWake">) => Effect.Effect<Tracker, RejectedError | StoreError, TaskStore | Transport | Scope.Scope>
    ): Promise<Host> {
      const env = this.env
      const scope = Effect.runSync(Scope.make())
      const graceMs = 2 * settings.pollWaitMs + 1_000
      const workers = () => {
        const binding = env[names.workers] as Fetcher | undefined
        if (binding === undefined) throw new Error(`no service binding ${names.workers} in env`)
        return binding
      }
      const host: Host = {
        instanceId,
        job,
        scope,
        tracker: undefined,
        local: undefined,
        lanes: undefined as unknown as LaneSet,
        armedAt: null,
        stepWaiters: [],
        closed: false
      }
      host.lanes = makeLaneSet(
        {
          instanceId,
          count: settings.lanes,
          slots: settings.laneSlots,
          heartbeatInterval: config.heartbeatInterval,
          contactTimeout: config.workerTimeout,
          pollWaitMs: settings.pollWaitMs,
          graceMs,
          tracker: () => (host.closed ? undefined : host.tracker),
          start: (start) =>
            workers().fetch(
              new Request("https://taskfold/lanes/run", {
                method: "POST",
                headers: { [AUTHORIZATION]: bearer(secretOf(env) ?? ""), "content-type": "application/json" },
                body: JSON.stringify(encodeLaneStart(start))
              })
            )
        },
        resumed ? busyWorkers(this.ctx.storage.sql, instanceId) : new Set()
      )
      const unreachable = (message: string) => Effect.fail(new TransportError({ reason: "unreachable", message }))
      const transport: TransportShape = {
        send: (workerId, batch) =>
          workerId === LOCAL_WORKER
            ? host.local === undefined
              ? unreachable("the local worker is not started yet")
              : Effect.sync(() => host.local!.deliver(batch))
            : host.lanes.send(workerId, batch),
        stop: (workerId, message) =>
          workerId === LOCAL_WORKER ? Effect.sync(() => host.local?.stop(message)) : host.lanes.stop(workerId, message),
        deliverOutcome: (id, outcome) =>
          Effect.tryPromise({
            try: async () => {
              this.#recordOutcome(id, job, outcome, host)
              await options.onOutcome?.(id, outcome)
            },
            catch: (cause) => new TransportError({ reason: "unreachable", message: `outcome not delivered: ${String(cause)}` })
          })
      }
      try {
        const tracker = await Effect.runPromise(
          make({ onWake: (at) => this.#wake(host, at) }).pipe(
            Effect.provideService(TaskStore, this.#store),
            Effect.provideService(Transport, transport),
            Scope.provide(scope)
          )
        )
        host.tracker = tracker
        host.local = makeLocalWorker({
          id: LOCAL_WORKER,
          slots: settings.localSlots,
          tracker,
          jobs: jobOf,
          heartbeatInterval: config.heartbeatInterval
        })
        // No timer of the object's own: the local worker registers once, idle lanes heartbeat on requests and
        // alarms, and the release is awaited, not polled.
        void Effect.runPromise(host.local.join.pipe(Effect.andThen(host.lanes.refresh)))
        Effect.runSync(
          Effect.forkIn(tracker.released.pipe(Effect.andThen(Effect.sync(() => queueMicrotask(() => this.#close(host))))), scope)
        )
        return host
      } catch (error) {
        host.closed = true
        await Effect.runPromise(Scope.close(scope, Exit.void))
        throw error
      }
    }

    #routes(): Hono<{ Bindings: Env }> {
      const app = new Hono<{ Bindings: Env }>()
      app.use("*", ...guards)
      const hostOf = (instanceId: string) => {
        const host = this.#host
        return host !== undefined && !host.closed && host.instanceId === instanceId ? host : undefined
      }

      app.post("/instances/:id/submit", async (c) => {
        const instanceId = c.req.param("id")
        let json: unknown
        try {
          json = await c.req.json()
        } catch {
          return errorJson(c, new DecodeFailure([{ path: [], message: "the body is not JSON" }]))
        }
        const decoded = decodeSubmit(json)
        if (Result.isFailure(decoded)) return errorJson(c, decoded.failure)
        const submit = decoded.success
        if (submit.instanceId !== undefined && submit.instanceId !== instanceId) {
          return failureJson(c, 400, "DecodeError", `instanceId ${submit.instanceId} is not ${instanceId}`, ["instanceId"])
        }
        const job = jobOf(submit.job)
        if (job === undefined) return failureJson(c, 400, "DecodeError", `no job ${submit.job} is deployed here`, ["job"])
        const stored = Effect.runSync(Effect.orElseSucceed(this.#store.listInstances(), () => [] as ReadonlyArray<string>))
        if (this.#starting || this.#host !== undefined || stored.length > 0 || this.#outcomes.read(instanceId) !== undefined) {
          return failureJson(c, 409, "Conflict", `instance ${instanceId} exists already`)
        }
        const config = await Effect.runPromise(
          Effect.result(resolveConfig({ localWorker: "exclude", ...options.config, ...job.config, ...submit.config }))
        )
        if (Result.isFailure(config)) {
          return failureJson(c, 400, "DecodeError", (config.failure as ConfigError).message, ["config"])
        }
        this.#starting = true
        try {
          this.#host = await this.#startHost(instanceId, job.name, config.success, false, (hooks) =>
            startTracker({
              instanceId,
              job: job.name,
              kind: job.kind,
              config: config.success,
              params: JSON.stringify(submit.params ?? null),
              localWorkerId: LOCAL_WORKER,
              ...hooks
            })
          )
        } finally {
          this.#starting = false
        }
        return c.json({ instanceId }, 201)
      })

      app.get("/instances/:id", async (c) => {
        const instanceId = c.req.param("id")
        const host = hostOf(instanceId)
        if (host?.tracker !== undefined) {
          const progress = await Effect.runPromise(host.tracker.progress)
          return c.json({ instanceId, job: host.job, state: progress.outcome === null ? "running" : "finishing", outcome: progress.outcome, progress })
        }
        const record = this.#outcomes.read(instanceId)
        if (record !== undefined) {
          return c.json({ instanceId, job: record.job, state: "finished", outcome: record.outcome, progress: record.progress })
        }
        return c.json({ error: { _tag: "RejectedError", reason: "unknown-instance", message: `no instance ${instanceId} here` } }, 404)
      })

      app.post("/instances/:id/lanes/:lane/poll", async (c) => {
        const host = hostOf(c.req.param("id"))
        if (host === undefined) return c.json(encodePollReply({ exit: true, items: [] }))
        const poll = decodeLanePoll(await c.req.json().catch(() => undefined))
        if (Result.isFailure(poll)) return errorJson(c, poll.failure)
        return c.json(encodePollReply(await host.lanes.poll(c.req.param("lane"), poll.success)))
      })

      app.post("/instances/:id/lanes/:lane/heartbeat", async (c) => {
        const instanceId = c.req.param("id")
        const host = hostOf(instanceId)
        const message = decodeLaneHeartbeat(await c.req.json().catch(() => undefined))
        if (Result.isFailure(message)) return errorJson(c, message.failure)
        const heartbeat = decodeHeartbeat(message.success.heartbeat)
        if (Result.isFailure(heartbeat)) {
          return errorJson(c, new DecodeFailure(heartbeat.failure.issues.map((issue) => ({ ...issue, path: ["heartbeat", ...issue.path] }))))
        }
        if (host === undefined) {
          return c.json({ error: { _tag: "RejectedError", reason: "unknown-instance", message: `no live instance ${instanceId} here` } }, 404)
        }
        return answerWith(c, host.lanes.heartbeat(c.req.param("lane"), message.success.generation, heartbeat.success), () => ({}))
      })

      trackerRoutes(app, (instanceId) => hostOf(instanceId)?.tracker)
      return app
    }
  }

  /** The Worker: the public API (forwarded to the instance's object) and the entry of lanes. */
  const app = new Hono<{ Bindings: Env }>()
  app.use("*", ...guards)

  app.post("/instances", async (c) => {
    let json: unknown
    try {
      json = await c.req.json()
    } catch {
      return errorJson(c, new DecodeFailure([{ path: [], message: "the body is not JSON" }]))
    }
    const decoded = decodeSubmit(json)
    if (Result.isFailure(decoded)) return errorJson(c, decoded.failure)
    const instanceId = decoded.success.instanceId ?? `${decoded.success.job}-${crypto.randomUUID()}`
    const headers = new Headers(c.req.raw.headers)
    headers.set("content-type", "application/json")
    return stubOf(c.env, instanceId).fetch(
      new Request(`https://tracker/instances/${encodeURIComponent(instanceId)}/submit`, {
        method: "POST",
        headers,
        body: JSON.stringify({ ...decoded.success, instanceId })
      })
    )
  })
  /** Hands a call to the instance's object. The body is read here (within the size limit) and sent on whole. */
  const forward = async (c: Context<{ Bindings: Env }>) => {
    const request = c.req.raw
    const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer()
    return stubOf(c.env, c.req.param("id") ?? "").fetch(
      new Request(request.url, { method: request.method, headers: request.headers, ...(body === undefined ? {} : { body }) })
    )
  }
  app.get("/instances/:id", forward)
  app.all("/instances/:id/*", forward)

  app.post("/lanes/run", async (c) => {
    const start = decodeLaneStart(await c.req.json().catch(() => undefined))
    if (Result.isFailure(start)) return failureJson(c, 400, "DecodeError", start.failure)
    const { instanceId, lane } = start.success
    const stub = stubOf(c.env, instanceId)
    const fetch: Fetch = (request) => stub.fetch(request)
    const secret = secretOf(c.env) ?? ""
    const base = `https://tracker/instances/${encodeURIComponent(instanceId)}/lanes/${encodeURIComponent(lane)}`
    const encoder = new TextEncoder()
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>()
    const writer = writable.getWriter()
    const work = runLane({
      start: start.success,
      jobs: jobOf,
      link: httpTrackerLink({ fetch, baseUrl: "https://tracker", secret, instanceId }),
      poll: (poll) =>
        callJson({ fetch, secret }, `${base}/poll`, poll, (json) => {
          const reply = decodePollReply(json)
          if (Result.isFailure(reply)) throw new Error(`bad poll answer: ${reply.failure}`)
          return reply.success
        }),
      heartbeat: (generation, heartbeat) => callJson({ fetch, secret }, `${base}/heartbeat`, { generation, heartbeat }, () => undefined)
    })
      .then(
        () => writer.write(encoder.encode(`${LANE_DONE}\n`)),
        (error: unknown) => writer.write(encoder.encode(`failed: ${String(error)}\n`))
      )
      .finally(() => writer.close())
      .catch(() => undefined)
    c.executionCtx.waitUntil(work)
    // The stream stays open while the lane runs: the object reads it to learn when the invocation ends.
    return new Response(readable, { status: 202, headers: { "content-type": "text/plain; charset=utf-8" } })
  })

  return {
    Tracker: TaskfoldTracker,
    /** The Worker's fetch handler: `export default { fetch: app.fetch }`. */
    fetch: (request: Request, env: Env, ctx: ExecutionContext) => app.fetch(request, env, ctx),
    app
  }
}
