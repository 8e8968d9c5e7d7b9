/**
 * taskfold on Cloudflare: one Durable Object per instance is its tracker (its SQLite is the store, its one
 * alarm the tracker's timer), and sub-tasks run in lanes: Worker invocations reached through a service
 * binding (see lanes.ts). `taskfold(options)` gives the Durable Object class to export and the Worker's
 * fetch handler.
 */
import {
  RejectedError,
  resolveConfig,
  StoreError,
  TransportError,
  type ConfigError,
  type Job,
  type JobConfig,
  type JobConfigOverrides,
  type Outcome
} from "@taskfold/core"
import {
  finishedTracker,
  resumeTracker,
  startTracker,
  TaskStore,
  Transport,
  type NewTrackerOptions,
  type TaskStoreShape,
  type Tracker,
  type TransportShape
} from "@taskfold/core/adapter"
import {
  answer,
  decodeMessage,
  encodeJson,
  guardedApp,
  httpTrackerLink,
  makeTrackerApp,
  paths,
  readMessage,
  request,
  SubmitRequest,
  wireError,
  type HttpClientOptions,
  type TrackerApi
} from "@taskfold/core/wire"
import { DurableObject } from "cloudflare:workers"
import { Effect, Exit, Scope } from "effect"
import type { Context, Hono } from "hono"
import {
  LANE_DONE,
  LANE_RUN_PATH,
  LaneHeartbeat,
  lanePath,
  LanePoll,
  LanePollReply,
  LaneStart,
  makeLaneSet,
  runLane,
  type LaneSet
} from "./lanes.ts"
import { makeLocalWorker, type LocalWorker } from "./local.ts"
import { busyWorkers, makeOutcomeTable, makeDurableObjectStore as makeSqlStore, readInstanceRow } from "./sql-driver.ts"

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

const unknownInstance = (instanceId: string) =>
  new RejectedError({ reason: "unknown-instance", message: `no live instance ${instanceId} here` })

/** A deployment without its secret refuses every call (R-WIRE-2). */
const noSecret = (name: string) =>
  Response.json(
    wireError("Unauthorized", "unauthorized", `the deployment has no secret ${name}: every call is refused`),
    { status: 401 }
  )

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
  const unknownJob = (name: string) => `no job ${JSON.stringify(name)} is deployed here`
  const secretOf = (env: Env) => {
    const secret = env[names.secret]
    return typeof secret === "string" && secret !== "" ? secret : undefined
  }
  const stubOf = (env: Env, instanceId: string) => {
    const namespace = env[names.tracker] as DurableObjectNamespace | undefined
    if (namespace === undefined) throw new Error(`no Durable Object binding ${names.tracker} in env`)
    return namespace.get(namespace.idFromName(instanceId))
  }
  /** An instance's object, as core's HTTP client reaches it. */
  const objectClient = (env: Env, instanceId: string, secret: string): HttpClientOptions => {
    const stub = stubOf(env, instanceId)
    return { baseUrl: "https://tracker", token: secret, fetch: (url, init) => stub.fetch(url, init) }
  }

  /** The tracker of one instance. Export it under the class name your wrangler config binds. */
  class TaskfoldTracker extends DurableObject<Env> {
    readonly #store: TaskStoreShape
    readonly #outcomes: ReturnType<typeof makeOutcomeTable>
    readonly #app: Hono | undefined
    #host: Host | undefined
    /** The instance a submit is starting. */
    #starting: string | undefined

    constructor(ctx: DurableObjectState, env: Env) {
      super(ctx, env)
      this.#store = makeSqlStore(ctx.storage)
      this.#outcomes = makeOutcomeTable(ctx.storage.sql)
      const secret = secretOf(env)
      this.#app = secret === undefined ? undefined : this.#routes(secret)
      // After an eviction or a restart, the instance resumes from SQLite before any request or alarm is let in (R-REC-1).
      void ctx.blockConcurrencyWhile(() => this.#resume())
    }

    override fetch(request: Request): Response | Promise<Response> {
      // Idle lanes heartbeat through the object while it is awake; between requests the alarm does it.
      const host = this.#host
      if (host !== undefined && !host.closed) void Effect.runPromise(host.lanes.refreshIfStale)
      return this.#app === undefined ? noSecret(names.secret) : this.#app.fetch(request)
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

    #live(instanceId: string): Host | undefined {
      const host = this.#host
      return host !== undefined && !host.closed && host.instanceId === instanceId ? host : undefined
    }

    async #resume(): Promise<void> {
      const instanceId = this.#storedInstance()
      if (instanceId === undefined) return
      const row = readInstanceRow(this.ctx.storage.sql, instanceId)
      if (row === undefined) return
      if (row.outcome !== null) this.#recordOutcome(instanceId, row.job, row.outcome, undefined)
      try {
        this.#host = await this.#startHost(instanceId, row.job, row.config, true, (hooks) =>
          resumeTracker(instanceId, LOCAL_WORKER, hooks)
        )
      } catch (error) {
        console.error(`taskfold: could not resume ${instanceId}:`, error)
      }
    }

    #storedInstance(): string | undefined {
      return Effect.runSync(Effect.orElseSucceed(this.#store.listInstances(), () => [] as ReadonlyArray<string>))[0]
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
      make: (
        hooks: Pick<NewTrackerOptions, "onWake">
      ) => Effect.Effect<Tracker, RejectedError | StoreError, TaskStore | Transport | Scope.Scope>
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
              new Request(`https://taskfold${LANE_RUN_PATH}`, {
                method: "POST",
                headers: { authorization: `Bearer ${secretOf(env) ?? ""}`, "content-type": "application/json" },
                body: encodeJson(start)
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
              : Effect.suspend(() => {
                  const refused = host.local!.deliver(batch)
                  return refused === undefined ? Effect.void : unreachable(refused.message)
                })
            : host.lanes.send(workerId, batch),
        stop: (workerId, message) =>
          workerId === LOCAL_WORKER ? Effect.sync(() => host.local?.stop(message)) : host.lanes.stop(workerId, message),
        deliverOutcome: (id, outcome) =>
          Effect.tryPromise({
            try: async () => {
              this.#recordOutcome(id, job, outcome, host)
              await options.onOutcome?.(id, outcome)
            },
            catch: (cause) =>
              new TransportError({ reason: "unreachable", message: `outcome not delivered: ${String(cause)}` })
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
          Effect.forkIn(
            tracker.released.pipe(Effect.andThen(Effect.sync(() => queueMicrotask(() => this.#close(host))))),
            scope
          )
        )
        return host
      } catch (error) {
        host.closed = true
        await Effect.runPromise(Scope.close(scope, Exit.void))
        throw error
      }
    }

    /**
     * Starts the instance the submit names (the Worker has named it: one object per instance). A repeated
     * submit starts nothing and is answered with the same id, running or finished.
     */
    #submit(
      request: SubmitRequest
    ): Effect.Effect<{ readonly instanceId: string }, RejectedError | ConfigError | StoreError> {
      return Effect.suspend(
        (): Effect.Effect<{ readonly instanceId: string }, RejectedError | ConfigError | StoreError> => {
          const instanceId = request.instanceId
          if (instanceId === undefined)
            return Effect.fail(
              new RejectedError({ reason: "bad-input", message: "a submit to an instance's object names the instance" })
            )
          const job = jobOf(request.job)
          if (job === undefined)
            return Effect.fail(new RejectedError({ reason: "bad-input", message: unknownJob(request.job) }))
          const held = this.#host?.instanceId ?? this.#starting ?? this.#storedInstance()
          if (held !== undefined || this.#outcomes.read(instanceId) !== undefined) {
            return held === undefined || held === instanceId
              ? Effect.succeed({ instanceId })
              : Effect.fail(
                  new RejectedError({ reason: "bad-input", message: `this object runs ${held}, not ${instanceId}` })
                )
          }
          return resolveConfig({ localWorker: "exclude", ...options.config, ...job.config, ...request.config }).pipe(
            Effect.flatMap((config) =>
              Effect.tryPromise({
                try: async () => {
                  this.#starting = instanceId
                  try {
                    this.#host = await this.#startHost(instanceId, job.name, config, false, (hooks) =>
                      startTracker({
                        instanceId,
                        job: job.name,
                        kind: job.kind,
                        config,
                        params: JSON.stringify(request.params ?? null),
                        localWorkerId: LOCAL_WORKER,
                        ...hooks
                      })
                    )
                  } finally {
                    this.#starting = undefined
                  }
                  return { instanceId }
                },
                catch: (cause) =>
                  new StoreError({
                    reason: "unavailable",
                    message: `instance ${instanceId} did not start: ${String(cause)}`
                  })
              })
            )
          )
        }
      )
    }

    /** Core's tracker routes for this object's one instance, and the lanes' own two. */
    #routes(secret: string): Hono {
      const host: TrackerApi = {
        tracker: (instanceId) =>
          Effect.suspend(() => {
            const live = this.#live(instanceId)?.tracker
            if (live !== undefined) return Effect.succeed(live)
            const record = this.#outcomes.read(instanceId)
            return record === undefined
              ? Effect.fail(unknownInstance(instanceId))
              : Effect.succeed(finishedTracker(record.instanceId, record.outcome, record.progress))
          }),
        submit: (request) => this.#submit(request),
        registerWorker: () =>
          Effect.fail(
            new RejectedError({ reason: "bad-input", message: "workers do not register here: sub-tasks run in lanes" })
          )
      }
      const app = makeTrackerApp(host, { token: secret, maxBodyBytes: settings.maxBodyBytes })

      app.post("/v1/instances/:id/lanes/:lane/poll", async (c) => {
        const poll = await readMessage(c, LanePoll)
        if (!poll.ok) return poll.response
        const live = this.#live(c.req.param("id"))
        // No instance here (any more): the invocation may go.
        if (live === undefined) return answer(c, Effect.succeed({ exit: true, items: [] }))
        return answer(
          c,
          Effect.promise(() => live.lanes.poll(c.req.param("lane"), poll.value))
        )
      })

      app.post("/v1/instances/:id/lanes/:lane/heartbeat", async (c) => {
        const message = await readMessage(c, LaneHeartbeat)
        if (!message.ok) return message.response
        const instanceId = c.req.param("id")
        const live = this.#live(instanceId)
        if (live === undefined) return answer(c, Effect.fail(unknownInstance(instanceId)))
        return answer(
          c,
          live.lanes
            .heartbeat(c.req.param("lane"), message.value.generation, message.value.heartbeat)
            .pipe(Effect.as({}))
        )
      })
      return app
    }
  }

  /**
   * The Worker: core's routes, each forwarded to the instance's object (a submit names its instance first),
   * and the entry of lanes. Built once per secret.
   */
  const workerApp = (secret: string): Hono => {
    const app = guardedApp({ token: secret, maxBodyBytes: settings.maxBodyBytes })
    /** An object that cannot be reached (reset, overloaded) is the platform's failure, not the caller's: 503. */
    const toObject = async (c: Context, instanceId: string, request: Request): Promise<Response> => {
      try {
        return await stubOf(c.env as Env, instanceId).fetch(request)
      } catch (error) {
        const message = `the object of ${instanceId} did not answer: ${error instanceof Error ? error.message : String(error)}`
        return c.json(wireError("TransportError", "unreachable", message), 503)
      }
    }

    app.post(paths.instances, async (c) => {
      const submit = await readMessage(c, SubmitRequest)
      if (!submit.ok) return submit.response
      const { job } = submit.value
      if (jobOf(job) === undefined)
        return c.json(wireError("DecodeError", "bad-field", unknownJob(job), '["job"]'), 400)
      const instanceId = submit.value.instanceId ?? `${job}-${crypto.randomUUID()}`
      return toObject(
        c,
        instanceId,
        new Request(`https://tracker${paths.instances}`, {
          method: "POST",
          headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
          body: encodeJson({ ...submit.value, instanceId })
        })
      )
    })

    /** Hands a call to the instance's object. The body is read here (within the size limit) and sent on whole. */
    const forward = async (c: Context) => {
      const request = c.req.raw
      const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer()
      return toObject(
        c,
        c.req.param("id") ?? "",
        new Request(request.url, {
          method: request.method,
          headers: request.headers,
          ...(body === undefined ? {} : { body })
        })
      )
    }
    app.get("/v1/instances/:id", forward)
    app.all("/v1/instances/:id/*", forward)

    app.post(LANE_RUN_PATH, async (c) => {
      const start = await readMessage(c, LaneStart)
      if (!start.ok) return start.response
      const { instanceId, lane } = start.value
      const client = objectClient(c.env as Env, instanceId, secret)
      const encoder = new TextEncoder()
      const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>()
      const writer = writable.getWriter()
      const work = runLane({
        start: start.value,
        jobs: jobOf,
        link: httpTrackerLink(client)(instanceId),
        poll: (poll) =>
          request(client, "POST", lanePath(instanceId, lane, "poll"), poll).pipe(
            Effect.flatMap((body) => decodeMessage(LanePollReply, body))
          ),
        heartbeat: (generation, heartbeat) =>
          request(client, "POST", lanePath(instanceId, lane, "heartbeat"), { generation, heartbeat })
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
    return app
  }
  let built: { readonly secret: string; readonly app: Hono } | undefined
  const appFor = (secret: string): Hono => {
    if (built?.secret !== secret) built = { secret, app: workerApp(secret) }
    return built.app
  }

  return {
    Tracker: TaskfoldTracker,
    /** The Worker's fetch handler: `export default { fetch: deployment.fetch }`. */
    fetch: (request: Request, env: Env, ctx: ExecutionContext): Response | Promise<Response> => {
      const secret = secretOf(env)
      return secret === undefined ? noSecret(names.secret) : appFor(secret).fetch(request, env, ctx)
    }
  }
}
