/**
 * taskfold on Cloudflare: one Durable Object per instance is its tracker, on core's TrackerHost (its SQLite
 * is the store and the outcome log, its one alarm the tracker's timer), and sub-tasks run in lanes: Worker
 * invocations reached through a service binding (see lanes.ts). `taskfold(options)` gives the Durable
 * Object class to export and the Worker's fetch handler.
 */
import { defaultConfig, RejectedError, type Job, type JobConfigOverrides, type Outcome } from "@taskfold/core"
import { makeSqlOutcomeLog, makeTrackerHost, type HostedInstance, type TaskStoreShape } from "@taskfold/core/adapter"
import type { TrackerHost } from "@taskfold/core/adapter"
import { answer, decodeMessage, encodeJson, guardedApp, httpTrackerLink, makeTrackerApp } from "@taskfold/core/wire"
import {
  asWorker,
  makeCredentialCheck,
  MIN_SECRET_LENGTH,
  operatorOnly,
  secretProblem,
  workerCredential
} from "@taskfold/core/wire"
import { paths, readMessage, request, SubmitRequest, wireError, type TrackerApi } from "@taskfold/core/wire"
import { DurableObject } from "cloudflare:workers"
import { Effect, Scope } from "effect"
import type { Context, Hono } from "hono"
import { LANE_RUN_PATH, LaneHeartbeat, laneId, lanePath, LanePoll, LanePollReply, LaneStart } from "@taskfold/core/wire"
import { laneResponse, makeLaneSet, runLane, type LaneSet } from "@taskfold/core/wire"
import { durableObjectDriver, makeDurableObjectStore, readInstanceRow } from "./sql-driver.ts"

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
  /** Called in the object once an instance's outcome is stored; a throw makes the tracker deliver it again (R-FIN-6) */
  readonly onOutcome?: (instanceId: string, outcome: Outcome) => void | Promise<void>
}

/** The worker id of the worker inside the object: root, final and broadcast preProcess run there. */
export const LOCAL_WORKER = "local"

export type Env = Record<string, unknown>

/** Resolves with `promise` or after `ms`, leaving no timer behind (a pending timer keeps the object from eviction). */
const atMost = (promise: Promise<void>, ms: number): Promise<void> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => {
    if (timer !== undefined) clearTimeout(timer)
  })
}

const badInput = (message: string) => new RejectedError({ reason: "bad-input", message })

/** A deployment without its secret, or with one too short to serve, refuses every call (R-WIRE-2). */
const noSecret = (name: string) =>
  Response.json(
    wireError(
      "Unauthorized",
      "unauthorized",
      `the deployment's secret ${name} is missing or shorter than ${MIN_SECRET_LENGTH} characters: ` +
        "every call is refused"
    ),
    { status: 401 }
  )

/** One instance's tracker, a Durable Object. */
export interface TaskfoldTrackerObject extends DurableObject<Env> {
  fetch(request: Request): Response | Promise<Response>
  alarm(): Promise<void>
  /** The instance it hosts, once submitted or resumed. */
  readonly instance: HostedInstance | undefined
}

/** What a Worker exports from a taskfold deployment. */
export interface TaskfoldDeployment {
  /** The Durable Object class, one object per instance: export it under the class name your wrangler config binds. */
  readonly Tracker: new (
    ctx: DurableObjectState,
    env: Env
  ) => TaskfoldTrackerObject
  /** The Worker's fetch handler: `export default { fetch: deployment.fetch }`. */
  readonly fetch: (request: Request, env: Env, ctx: ExecutionContext) => Response | Promise<Response>
}

/** The Durable Object class and the Worker handler of a taskfold deployment. */
export const taskfold = (options: TaskfoldOptions): TaskfoldDeployment => {
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
  const standing = Array.from({ length: settings.lanes }, (_, n) => ({ id: laneId(n), slots: settings.laneSlots }))
  const secretOf = (env: Env) => {
    const secret = env[names.secret]
    return typeof secret === "string" && secretProblem(secret) === undefined ? secret : undefined
  }
  const stubOf = (env: Env, instanceId: string) => {
    const namespace = env[names.tracker] as DurableObjectNamespace | undefined
    if (namespace === undefined) throw new Error(`no Durable Object binding ${names.tracker} in env`)
    return namespace.get(namespace.idFromName(instanceId))
  }

  /** The tracker of one instance. Export it under the class name your wrangler config binds. */
  class TaskfoldTracker extends DurableObject<Env> {
    readonly #app: Hono | undefined
    readonly #store: TaskStoreShape
    #host!: TrackerHost
    #lanes: LaneSet | undefined
    /** The instance a submit is starting. */
    #starting: string | undefined
    /** The time the object's alarm is set for (null: none set by this incarnation). */
    #armedAt: number | null = null
    /** Resolved after the tracker's next step. */
    #stepWaiters: Array<() => void> = []

    constructor(ctx: DurableObjectState, env: Env) {
      super(ctx, env)
      this.#store = makeDurableObjectStore(ctx.storage)
      const secret = secretOf(env)
      this.#app = secret === undefined ? undefined : this.#routes(secret)
      // After an eviction or a restart, the host resumes the instance before any request or alarm is let in (R-REC-1).
      // A host that cannot start (its store failing) throws here, which resets the object.
      void ctx.blockConcurrencyWhile(async () => {
        this.#host = await Effect.runPromise(this.#makeHost().pipe(Scope.provide(Effect.runSync(Scope.make()))))
      })
    }

    override fetch(request: Request): Response | Promise<Response> {
      return this.#app === undefined ? noSecret(names.secret) : this.#app.fetch(request)
    }

    /**
     * The tracker's timer. Idempotent: it ticks the tracker, which does whatever is due by now (nothing, if
     * the alarm came early or twice), and the step's next wake-up time arms the alarm again.
     */
    override async alarm(): Promise<void> {
      const live = this.instance
      if (live === undefined) return
      this.#armedAt = null
      const stepped = new Promise<void>((resolve) => this.#stepWaiters.push(resolve))
      await Effect.runPromise(live.tracker.tick)
      await atMost(stepped, 10_000)
    }

    /** The instance this object runs (for tests and tools). */
    get instance(): HostedInstance | undefined {
      return this.#host.instances()[0]
    }

    #makeHost() {
      const storage = this.ctx.storage
      return Effect.flatMap(makeSqlOutcomeLog(durableObjectDriver(storage)), (outcomes) =>
        makeTrackerHost({
          jobs: options.jobs,
          store: this.#store,
          outcomes,
          local: { id: LOCAL_WORKER, slots: settings.localSlots, mode: "on-demand" },
          remote: {
            send: (workerId, batch) => this.#lanesOf(batch.instanceId).send(workerId, batch),
            stop: (workerId, message) => this.#lanesOf(message.instanceId).stop(workerId, message)
          },
          config: { localWorker: "exclude", ...options.config },
          standing: () => standing,
          hooks: () => ({ onWake: (at) => this.#wake(at) }),
          onStarted: ({ instanceId, tracker }) =>
            Effect.asVoid(
              Effect.forkDetach(tracker.released.pipe(Effect.andThen(Effect.sync(() => this.#released(instanceId)))))
            ),
          ...(options.onOutcome === undefined ? {} : { onOutcome: options.onOutcome }),
          log: (line) => console.log(`taskfold: ${line}`)
        })
      )
    }

    /** The instance's lanes, made on first use: one instance per object. */
    #lanesOf(instanceId: string): LaneSet {
      if (this.#lanes?.instanceId === instanceId) return this.#lanes
      const config = this.#host.live(instanceId)?.config ?? readInstanceRow(this.ctx.storage.sql, instanceId)?.config
      const env = this.env
      this.#lanes = makeLaneSet({
        instanceId,
        count: settings.lanes,
        slots: settings.laneSlots,
        heartbeatInterval: config?.heartbeatInterval ?? defaultConfig.heartbeatInterval,
        pollWaitMs: settings.pollWaitMs,
        tracker: () => this.#host.live(instanceId)?.tracker,
        start: (start) => {
          const binding = env[names.workers] as Fetcher | undefined
          if (binding === undefined) throw new Error(`no service binding ${names.workers} in env`)
          return binding.fetch(`https://taskfold${LANE_RUN_PATH}`, {
            method: "POST",
            headers: { authorization: `Bearer ${secretOf(env) ?? ""}`, "content-type": "application/json" },
            body: encodeJson(start)
          })
        }
      })
      return this.#lanes
    }

    /** A new alarm time from the tracker; only a change touches storage. */
    #wake(at: number | null): void {
      for (const resolve of this.#stepWaiters.splice(0)) resolve()
      if (at === this.#armedAt) return
      this.#armedAt = at
      const done = at === null ? this.ctx.storage.deleteAlarm() : this.ctx.storage.setAlarm(at)
      done.catch((error: unknown) => console.error("taskfold: could not set the alarm:", error))
    }

    #released(instanceId: string): void {
      if (this.#lanes?.instanceId === instanceId) this.#lanes.close()
      for (const resolve of this.#stepWaiters.splice(0)) resolve()
      this.#armedAt = null
      this.ctx.storage.deleteAlarm().catch(() => undefined)
    }

    /** The instance this object holds: live, starting, stored or logged (one per object). */
    #held() {
      return Effect.gen({ self: this }, function* () {
        if (this.#starting !== undefined) return this.#starting
        const known = (yield* this.#host.list(1))[0]?.instanceId
        return known ?? ((yield* this.#store.listInstances())[0] as string | undefined)
      })
    }

    /** Core's tracker routes for this object's one instance, and the lanes' own two. */
    #routes(secret: string): Hono {
      const api: TrackerApi = {
        tracker: (instanceId) => Effect.suspend(() => this.#host.tracker(instanceId)),
        // The Worker has named the instance: a submit naming another than the one held here is refused.
        submit: (submit) =>
          Effect.gen({ self: this }, function* () {
            const instanceId = submit.instanceId
            if (instanceId === undefined) return yield* badInput("a submit to an instance's object names the instance")
            const held = yield* this.#held()
            if (held !== undefined && held !== instanceId)
              return yield* badInput(`this object runs ${held}, not ${instanceId}`)
            if (held !== undefined) return yield* this.#host.submit(submit)
            this.#starting = instanceId
            const started = this.#host.submit(submit)
            return yield* started.pipe(Effect.ensuring(Effect.sync(() => (this.#starting = undefined))))
          }),
        registerWorker: () => Effect.fail(badInput("workers do not register here: sub-tasks run in lanes")),
        localWorkerId: LOCAL_WORKER
      }
      const app = makeTrackerApp(api, { token: secret, maxBodyBytes: settings.maxBodyBytes })
      const lanesOf = (instanceId: string) =>
        this.#host.live(instanceId) === undefined ? undefined : this.#lanesOf(instanceId)

      // A lane's invocation calls as its lane, with the lane's worker credential (R-WIRE-4).
      app.post("/v1/instances/:id/lanes/:lane/poll", async (c) => {
        const refused = asWorker(c, c.req.param("lane"))
        if (refused !== undefined) return refused
        const poll = await readMessage(c, LanePoll)
        if (!poll.ok) return poll.response
        const lanes = lanesOf(c.req.param("id"))
        // No instance here (any more): the invocation may go.
        const reply = lanes?.poll(c.req.param("lane"), poll.value) ?? { exit: true, items: [] }
        return answer(
          c,
          Effect.promise(async () => reply)
        )
      })

      app.post("/v1/instances/:id/lanes/:lane/heartbeat", async (c) => {
        const refused = asWorker(c, c.req.param("lane"))
        if (refused !== undefined) return refused
        const message = await readMessage(c, LaneHeartbeat)
        if (!message.ok) return message.response
        const instanceId = c.req.param("id")
        const { generation, heartbeat } = message.value
        const lanes = lanesOf(instanceId)
        const forwarded =
          lanes?.heartbeat(c.req.param("lane"), generation, heartbeat) ??
          Effect.fail(new RejectedError({ reason: "unknown-instance", message: `no live instance ${instanceId} here` }))
        return answer(c, Effect.as(forwarded, {}))
      })
      return app
    }
  }

  /**
   * The Worker: core's routes, each forwarded to the instance's object (a submit names its instance first),
   * and the entry of lanes. Built once per secret.
   */
  const workerApp = (secret: string): Hono => {
    // Any valid credential passes on to the object, which checks what its holder may do (R-WIRE-4).
    const app = guardedApp({ token: secret, maxBodyBytes: settings.maxBodyBytes }, makeCredentialCheck(secret))
    /** An object that cannot be reached (reset, overloaded) is the platform's failure, not the caller's: 503. */
    const toObject = async (c: Context, instanceId: string, request: Request): Promise<Response> => {
      try {
        return await stubOf(c.env as Env, instanceId).fetch(request)
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error)
        const message = `the object of ${instanceId} did not answer: ${why}`
        return c.json(wireError("TransportError", "unreachable", message), 503)
      }
    }

    app.post(paths.instances, async (c) => {
      const submit = await readMessage(c, SubmitRequest)
      if (!submit.ok) return submit.response
      const { job } = submit.value
      if (jobOf(job) === undefined)
        return c.json(
          wireError("DecodeError", "bad-field", `no job ${JSON.stringify(job)} is deployed here`, '["job"]'),
          400
        )
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

    // The stream stays open while the lane runs: the object reads it to learn when the invocation ends.
    app.post(LANE_RUN_PATH, async (c) => {
      // Only the object starts lanes, with the secret.
      const refused = operatorOnly(c)
      if (refused !== undefined) return refused
      const start = await readMessage(c, LaneStart)
      if (!start.ok) return start.response
      const { instanceId, lane } = start.value
      const stub = stubOf(c.env as Env, instanceId)
      const client = {
        baseUrl: "https://tracker",
        token: await workerCredential(secret, lane),
        fetch: (url: string, init: RequestInit) => stub.fetch(url, init)
      }
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
      return laneResponse(work, c.executionCtx)
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
