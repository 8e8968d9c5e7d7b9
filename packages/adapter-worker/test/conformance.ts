/**
 * The far ends of the transport conformance runs in workerd (transport.test.ts), served by the test Worker
 * (worker.ts) under CONFORMANCE_PATH and reached through its service binding. The Worker's module state is
 * shared with the tests (one isolate), so a test puts a recording worker or tracker here and reads what it got.
 */
import { defineJob, RejectedError, type TransportError } from "@taskfold/core"
import type { StopMessage, TaskBatch, Tracker, TrackerLink } from "@taskfold/core/adapter"
import { CONFORMANCE_JOB, conformanceTracker, type ConformanceWorker, type Received } from "@taskfold/core/testing"
import {
  decodeMessage,
  encodeJson,
  guardedApp,
  makeTrackerApp,
  makeWorkerApp,
  parseJson,
  readMessage,
  wireError
} from "@taskfold/core/wire"
import { DurableObject, env } from "cloudflare:workers"
import { Effect, Exit, Schema } from "effect"
import type { Hono } from "hono"
import {
  LaneHeartbeat,
  type LaneItem,
  LanePoll,
  LanePollReply,
  laneResponse,
  LaneStart,
  makeLaneSet,
  runLane
} from "@taskfold/core/wire"

export const CONFORMANCE_PATH = "/conformance"
export const CONFORMANCE_TOKEN = "conformance-secret"
/** The worker apps' body limit: a batch over it answers 413. */
export const CONFORMANCE_MAX_BODY_BYTES = 4 * 1024 * 1024

const workers = new Map<string, Hono>()
const trackers = new Map<string, Tracker>()

const trackerApp = makeTrackerApp(
  {
    tracker: (instanceId) =>
      Effect.suspend(() => {
        const found = trackers.get(instanceId)
        return found === undefined
          ? Effect.fail(new RejectedError({ reason: "unknown-instance", message: `no instance ${instanceId}` }))
          : Effect.succeed(found)
      }),
    submit: () => Effect.fail(new RejectedError({ reason: "bad-input", message: "no submits here" }))
  },
  { token: CONFORMANCE_TOKEN }
)

export const conformance = {
  /** The base URL of worker `workerId`'s app, behind the service binding. */
  workerUrl: (workerId: string) => `https://conformance${CONFORMANCE_PATH}/workers/${encodeURIComponent(workerId)}`,
  trackerUrl: `https://conformance${CONFORMANCE_PATH}/tracker`,
  addWorker: (handle: ConformanceWorker) =>
    void workers.set(
      handle.id,
      makeWorkerApp(handle, { token: CONFORMANCE_TOKEN, maxBodyBytes: CONFORMANCE_MAX_BODY_BYTES })
    ),
  removeWorker: (workerId: string) => void workers.delete(workerId),
  addTracker: (tracker: Tracker) => void trackers.set(tracker.instanceId, tracker),
  removeTracker: (instanceId: string) => void trackers.delete(instanceId)
}

const gone = (what: string) =>
  Response.json(
    wireError("TransportError", "unreachable", `${what} is not here`),
    // What a binding answers for a Worker that is gone.
    { status: 503 }
  )

/**
 * Serves a request under CONFORMANCE_PATH: `/workers/<id>/v1/…` to that worker's app, `/tracker/v1/…` to the
 * tracker's, `/lanes/run` to a lane invocation.
 */
export const serveConformance = (
  request: Request,
  env: Record<string, unknown>,
  ctx: ExecutionContext
): Response | Promise<Response> => {
  const url = new URL(request.url)
  const rest = url.pathname.slice(CONFORMANCE_PATH.length)
  const forward = (app: Hono, path: string) => {
    url.pathname = path
    return app.fetch(new Request(url, request))
  }
  const worker = /^\/workers\/([^/]+)(\/.*)$/.exec(rest)
  if (worker !== null) {
    const id = decodeURIComponent(worker[1]!)
    const app = workers.get(id)
    return app === undefined ? gone(`worker ${id}`) : forward(app, worker[2]!)
  }
  if (rest.startsWith("/tracker/")) return forward(trackerApp, rest.slice("/tracker".length))
  if (rest === "/lanes/run") {
    url.pathname = "/run"
    return laneApp.fetch(new Request(url, request), env, ctx)
  }
  return Response.json(wireError("NotFound", "no-route", `no route ${rest}`), { status: 404 })
}

// ---------------------------------------------------------------------------------------------------------
// Lanes: the adapter's own transport to sub-task workers (core wire/lanes.ts), in a Durable Object as the tracker
// object holds it, with its invocations started through the service binding as taskfold.ts starts them.

/** Items each lane invocation got, `${home} ${lane}` → batches and stops in arrival order. */
const laneItems = new Map<string, { batches: TaskBatch[]; stops: StopMessage[] }>()

export const laneReceived = (home: string, lane: string): Received => {
  const items = laneItems.get(`${home} ${lane}`)
  return { batches: [...(items?.batches ?? [])], stops: [...(items?.stops ?? [])] }
}

const record = (home: string, lane: string, items: ReadonlyArray<LaneItem>) => {
  const key = `${home} ${lane}`
  const seen = laneItems.get(key) ?? { batches: [], stops: [] }
  laneItems.set(key, seen)
  for (const item of items) {
    if (item.batch !== undefined) seen.batches.push(item.batch)
    if (item.stop !== undefined) seen.stops.push(item.stop)
  }
}

/** The job of every conformance batch: it holds its task until it is stopped, so the lane keeps running. */
const held = defineJob({
  name: CONFORMANCE_JOB,
  kind: "map",
  process: (_task, ctx) =>
    new Promise<null>((resolve) => ctx.signal.addEventListener("abort", () => resolve(null), { once: true }))
})

/** What a lane invocation's reports and calls reach: they answer, and nothing is checked of them here. */
const quietLink: TrackerLink = {
  report: (batch) => Effect.succeed({ applied: batch.reports.length, dropped: 0, unknown: [], rejected: [] }),
  map: (request) => Effect.succeed(request.bodies.length),
  heartbeat: () => Effect.void,
  appendContext: () => Effect.succeed(true),
  readResults: () => Effect.succeed([])
}

export const LANE_COUNT = 4
/** The lane Worker's body limit (the test deployment's): a first batch over it cannot start an invocation. */
export const LANE_MAX_BODY_BYTES = 2 * 1024 * 1024
const LANE_RUN = `${CONFORMANCE_PATH}/lanes/run`

const quietTracker = (instanceId: string): Tracker => ({
  ...conformanceTracker(instanceId),
  heartbeat: () => Effect.succeed({ dispatchMode: "push" })
})

/** A call's end as it crosses RPC: plain data, the error's reason and message. */
export type LaneSettled =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: TransportError["reason"]; readonly message: string }
  | { readonly ok: false; readonly defect: string }

/** A Durable Object holding one lane set (its name is the lane set's instance id); the test drives it by RPC. */
export class LaneProbe extends DurableObject<Record<string, unknown>> {
  readonly #lanes = makeLaneSet({
    instanceId: this.ctx.id.name ?? "lanes",
    count: LANE_COUNT,
    slots: 4,
    heartbeatInterval: 60_000,
    pollWaitMs: 200,
    tracker: () => quietTracker(this.ctx.id.name ?? "lanes"),
    start: (start) =>
      (this.env["WORKERS"] as Fetcher).fetch(
        new Request(`https://conformance${LANE_RUN}`, {
          method: "POST",
          headers: { authorization: `Bearer ${CONFORMANCE_TOKEN}`, "content-type": "application/json" },
          body: encodeJson(start)
        })
      )
  })

  async #settle(effect: Effect.Effect<void, TransportError>): Promise<LaneSettled> {
    const exit = await Effect.runPromiseExit(effect)
    if (Exit.isSuccess(exit)) return { ok: true }
    const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
    return failure?._tag === "Fail"
      ? { ok: false, reason: failure.error.reason, message: failure.error.message }
      : { ok: false, defect: String(exit.cause) }
  }

  send(workerId: string, batch: TaskBatch): Promise<LaneSettled> {
    return this.#settle(this.#lanes.send(workerId, batch))
  }

  stop(workerId: string, message: StopMessage): Promise<LaneSettled> {
    return this.#settle(this.#lanes.stop(workerId, message))
  }

  close(): void {
    this.#lanes.close()
  }

  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url)
    const [, call, lane] = url.pathname.split("/")
    if (call === "poll" && lane !== undefined) {
      const poll = Schema.decodeUnknownSync(LanePoll)(parseJson(await request.text()))
      return new Response(encodeJson(await this.#lanes.poll(lane, poll)))
    }
    if (call === "heartbeat" && lane !== undefined) {
      const { generation, heartbeat } = Schema.decodeUnknownSync(LaneHeartbeat)(parseJson(await request.text()))
      await Effect.runPromise(Effect.ignore(this.#lanes.heartbeat(lane, generation, heartbeat)))
      return new Response("{}")
    }
    return new Response(null, { status: 404 })
  }
}

const laneProbe = (env: Record<string, unknown>, home: string) => {
  const namespace = env["LANE_PROBE"] as DurableObjectNamespace
  return namespace.get(namespace.idFromName(home))
}

/** The Worker's side of a lane, as taskfold.ts serves LANE_RUN_PATH: core's worker runtime fed by the mailbox. */
const laneApp = guardedApp({ token: CONFORMANCE_TOKEN, maxBodyBytes: LANE_MAX_BODY_BYTES })
laneApp.post("/run", async (c) => {
  const start = await readMessage(c, LaneStart)
  if (!start.ok) return start.response
  const { instanceId: home, lane } = start.value
  record(home, lane, start.value.items)
  const probe = laneProbe(c.env as Record<string, unknown>, home)
  const call = (path: string, body: unknown) =>
    Effect.tryPromise(async () => {
      const response = await probe.fetch(`https://probe/${path}/${lane}`, { method: "POST", body: encodeJson(body) })
      return parseJson(await response.text())
    })
  const work = runLane({
    start: start.value,
    jobs: (name) => (name === CONFORMANCE_JOB ? held : undefined),
    link: quietLink,
    poll: (poll) =>
      call("poll", poll).pipe(
        Effect.flatMap((body) => decodeMessage(LanePollReply, body)),
        Effect.tap((reply) =>
          Effect.sync(() =>
            record(
              home,
              lane,
              reply.items.filter((item) => item.seq > poll.ack)
            )
          )
        )
      ),
    heartbeat: (generation, heartbeat) => call("heartbeat", { generation, heartbeat })
  })
  return laneResponse(work, c.executionCtx)
})

export const laneProbeOf = (home: string) =>
  laneProbe(env as unknown as Record<string, unknown>, home) as unknown as DurableObjectStub<LaneProbe>
