/**
 * Lanes: how a tracker gets sub-tasks run by workers it starts with a request and cannot reach afterwards (a
 * Durable Object's Worker invocations; any runtime whose workers can call out but not be called).
 *
 * A lane is one standing worker (`lane-0`, `lane-1`, …, R-WORK-6) with a fixed number of slots, and at most one
 * invocation at a time. The first batch sent to an idle lane starts an invocation (a request, for a Durable Object
 * a fetch through a service binding); later batches and stops for it wait in the lane's mailbox in the object,
 * which the invocation long-polls. When the invocation holds nothing and its mailbox is empty it asks to leave, and
 * the object, single-threaded, lets it go only if nothing arrived meanwhile. While it runs, the invocation's worker
 * runtime heartbeats for itself. An invocation whose answer stream ends without its closing line is gone
 * (R-WORK-7); everything else about a lane's liveness is the tracker's to judge.
 */
import { Deferred, Effect, Exit, Schema } from "effect"
import { makeOnDemandWorker } from "../host/on-demand-worker.ts"
import { RejectedError, type StoreError, TransportError } from "../model/errors.ts"
import type { Job } from "../model/job.ts"
import { Heartbeat, StopMessage, TaskBatch } from "../model/messages.ts"
import type { Tracker } from "../tracker/tracker.ts"
import type { TrackerLink } from "../worker/runtime.ts"

// ---------------------------------------------------------------------------------------------------------
// Messages between the object and a lane's invocation, JSON through core's codec (bytes bodies as base64).

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const Id = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(256))

/** A batch or a stop for a lane, numbered so a lost answer loses nothing: the invocation acknowledges by number. */
export const LaneItem = Schema.Struct({
  seq: Count,
  batch: Schema.optionalKey(TaskBatch),
  stop: Schema.optionalKey(StopMessage)
})
export type LaneItem = typeof LaneItem.Type

/** Object → Worker: start an invocation of `lane` for an instance, with its first items. */
export const LaneStart = Schema.Struct({
  instanceId: Id,
  lane: Id,
  generation: Id,
  slots: Schema.Int.check(Schema.isGreaterThan(0)),
  heartbeatInterval: Schema.Int.check(Schema.isGreaterThan(0)),
  items: Schema.Array(LaneItem)
})
export type LaneStart = typeof LaneStart.Type

/** Invocation → object: what I have taken, the batches my worker refused among them, and whether I hold nothing. */
export const LanePoll = Schema.Struct({
  generation: Id,
  ack: Schema.Int.check(Schema.isGreaterThanOrEqualTo(-1)),
  idle: Schema.Boolean,
  refused: Schema.optionalKey(Schema.Array(Schema.Struct({ seq: Count, message: Schema.String })))
})
export type LanePoll = typeof LanePoll.Type

export const LanePollReply = Schema.Struct({ exit: Schema.Boolean, items: Schema.Array(LaneItem) })
export type LanePollReply = typeof LanePollReply.Type

/** Invocation → object: its worker runtime's heartbeat, forwarded while the invocation is the lane's current one. */
export const LaneHeartbeat = Schema.Struct({ generation: Id, heartbeat: Heartbeat })
export type LaneHeartbeat = typeof LaneHeartbeat.Type

/** Where the Worker starts lane invocations, and where an instance's object serves its lanes. */
export const LANE_RUN_PATH = "/v1/lanes/run"
export const lanePath = (instanceId: string, lane: string, call: "poll" | "heartbeat") =>
  `/v1/instances/${encodeURIComponent(instanceId)}/lanes/${encodeURIComponent(lane)}/${call}`

/** The last line of a lane invocation's answer when it ended on its own; an answer that ends without it is a crash. */
export const LANE_DONE = "done"

// ---------------------------------------------------------------------------------------------------------
// The object's side.

interface Lane {
  readonly id: string
  /** The running invocation (null: none). */
  generation: string | null
  /** Whether that invocation took a batch: only then can its end lose tasks. */
  took: boolean
  /** When the invocation last polled (or was started or adopted): a live one is never long without a poll. */
  polledAt: number
  /** Items not yet acknowledged by the running invocation. */
  mailbox: LaneItem[]
  nextSeq: number
  readonly waiters: Set<() => void>
  /** Sends waiting for the invocation to take their batch: the take is the batch's receipt (R-DISP-10). */
  readonly receipts: Map<number, Deferred.Deferred<void, TransportError>>
}

export interface LaneSetOptions {
  readonly instanceId: string
  readonly count: number
  readonly slots: number
  readonly heartbeatInterval: number
  /** How long a poll waits for an item before it answers empty. */
  readonly pollWaitMs: number
  /** The instance's live tracker, if any. */
  readonly tracker: () => Tracker | undefined
  /** Starts an invocation; resolves with its response, whose stream ends when the invocation does. */
  readonly start: (start: LaneStart) => Promise<Response>
}

export const laneId = (n: number) => `lane-${n}`

const failure = (reason: TransportError["reason"], message: string) => new TransportError({ reason, message })

export const makeLaneSet = (options: LaneSetOptions) => {
  // A live invocation polls again as soon as a poll answers, and a poll answers within pollWaitMs: one silent
  // for longer than this (with no poll waiting) died without a stream to say so (it outlived a restart).
  const silentMs = 2 * options.pollWaitMs + 5_000
  const lanes = new Map<string, Lane>()
  for (let n = 0; n < options.count; n++) {
    const id = laneId(n)
    lanes.set(id, {
      id,
      generation: null,
      took: false,
      polledAt: 0,
      mailbox: [],
      nextSeq: 0,
      waiters: new Set(),
      receipts: new Map()
    })
  }
  let closed = false
  /** Invocations this object saw end: a late poll of one is not adopted. */
  const gone = new Set<string>()
  /** The instance's params, from the first batch that carried them: every new invocation needs them. */
  let params: string | undefined

  const wake = (lane: Lane) => {
    for (const waiter of lane.waiters) waiter()
    lane.waiters.clear()
  }

  const settle = (lane: Lane, seq: number, error?: TransportError) => {
    const receipt = lane.receipts.get(seq)
    if (receipt === undefined) return
    lane.receipts.delete(seq)
    Deferred.doneUnsafe(receipt, error === undefined ? Effect.void : Effect.fail(error))
  }

  /** What the invocation took up to `ack`: refused batches fail their send, the rest succeed. */
  const taken = (lane: Lane, poll: LanePoll) => {
    for (const { seq, message } of poll.refused ?? []) settle(lane, seq, failure("rejected", `${lane.id}: ${message}`))
    for (const seq of [...lane.receipts.keys()]) {
      if (seq > poll.ack) continue
      lane.took = true
      settle(lane, seq)
    }
  }

  /** Batches the invocation never took: their sends fail, which counts toward maxRedeliveries (R-DISP-10). */
  const untaken = (lane: Lane, why: string) => {
    for (const seq of [...lane.receipts.keys()])
      settle(lane, seq, failure("unreachable", `${lane.id}: ${why} before it took the batch`))
  }

  /** The lane's invocation is gone: its undelivered items are dropped and their sends fail. */
  const ended = (lane: Lane) => {
    if (lane.generation !== null) gone.add(lane.generation)
    lane.generation = null
    lane.took = false
    lane.mailbox = []
    untaken(lane, "the invocation ended")
    wake(lane)
  }

  const receiptOf = (lane: Lane, seq: number): Effect.Effect<void, TransportError> => {
    const receipt = Deferred.makeUnsafe<void, TransportError>()
    lane.receipts.set(seq, receipt)
    return Deferred.await(receipt)
  }

  /** Reads an invocation's response to its end: one that took work and ended without its closing line is gone. */
  const watch = (lane: Lane, generation: string, response: Response) => {
    const read = async () => {
      let text = ""
      if (response.body !== null) {
        const decoder = new TextDecoder()
        const reader = response.body.getReader()
        for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
          text = (text + decoder.decode(chunk.value, { stream: true })).slice(-64)
      }
      return text.trim().endsWith(LANE_DONE)
    }
    void read()
      .catch(() => false)
      .then((clean) => {
        if (lane.generation !== generation) return
        const held = lane.took
        ended(lane)
        const tracker = options.tracker()
        if (!clean && held && tracker !== undefined)
          void Effect.runPromise(tracker.workerGone(lane.id, "its invocation ended without its closing line"))
      })
  }

  const start = (lane: Lane, item: LaneItem): Effect.Effect<void, TransportError> =>
    Effect.tryPromise({
      try: async () => {
        const generation = crypto.randomUUID()
        lane.generation = generation
        lane.took = false
        lane.polledAt = Date.now()
        lane.mailbox = []
        const response = await options
          .start({
            instanceId: options.instanceId,
            lane: lane.id,
            generation,
            slots: options.slots,
            heartbeatInterval: options.heartbeatInterval,
            items: [item]
          })
          .catch((cause: unknown) => {
            if (lane.generation === generation) ended(lane)
            throw cause
          })
        if (response.ok) return watch(lane, generation, response)
        if (lane.generation === generation) ended(lane)
        await response.body?.cancel()
        // A first batch over the Worker's body limit is split by the tracker (R-DISP-10).
        throw failure(
          response.status === 413 ? "too-large" : "unreachable",
          `the lane's Worker answered ${response.status}`
        )
      },
      catch: (cause) =>
        cause instanceof TransportError
          ? failure(cause.reason, `${lane.id}: ${cause.message}`)
          : failure("unreachable", `${lane.id}: ${cause instanceof Error ? cause.message : String(cause)}`)
    })

  const enqueue = (lane: Lane, item: Omit<LaneItem, "seq">): number => {
    const seq = lane.nextSeq++
    lane.mailbox.push({ ...item, seq })
    wake(lane)
    return seq
  }

  /** Adopts an invocation the object did not start (it outlived a restart) if the lane has no other. */
  const current = (lane: Lane, generation: string): boolean => {
    if (lane.generation === generation) return true
    if (lane.generation !== null || gone.has(generation)) return false
    lane.generation = generation
    lane.took = true
    lane.mailbox = []
    return true
  }

  return {
    instanceId: options.instanceId,
    send: (workerId: string, batch: TaskBatch): Effect.Effect<void, TransportError> =>
      Effect.suspend(() => {
        if (batch.params !== undefined) params = batch.params
        const lane = lanes.get(workerId)
        if (lane === undefined || closed) return Effect.fail(failure("unreachable", `no lane ${workerId}`))
        if (lane.generation !== null && lane.waiters.size === 0 && Date.now() - lane.polledAt > silentMs) ended(lane)
        if (lane.generation !== null) return receiptOf(lane, enqueue(lane, { batch }))
        const seq = lane.nextSeq++
        const receipt = receiptOf(lane, seq)
        // A fresh invocation has no params yet: its first batch brings them even if the tracker left them out.
        const first = batch.params === undefined && params !== undefined ? { ...batch, params } : batch
        return start(lane, { seq, batch: first }).pipe(Effect.andThen(receipt))
      }),
    stop: (workerId: string, message: StopMessage) =>
      Effect.sync(() => {
        const lane = lanes.get(workerId)
        if (lane !== undefined && lane.generation !== null) enqueue(lane, { stop: message })
      }),
    poll: async (workerId: string, poll: LanePoll): Promise<LanePollReply> => {
      const lane = lanes.get(workerId)
      if (lane === undefined || closed || !current(lane, poll.generation)) return { exit: true, items: [] }
      lane.polledAt = Date.now()
      taken(lane, poll)
      const pending = () => lane.mailbox.filter((item) => item.seq > poll.ack)
      lane.mailbox = pending()
      if (lane.mailbox.length > 0) return { exit: false, items: lane.mailbox }
      if (poll.idle) {
        // Nothing held, nothing waiting: the invocation may go; the next send starts a fresh one.
        ended(lane)
        return { exit: true, items: [] }
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer)
          lane.waiters.delete(done)
          resolve()
        }
        const timer = setTimeout(done, options.pollWaitMs)
        lane.waiters.add(done)
      })
      if (closed || lane.generation !== poll.generation) return { exit: true, items: [] }
      lane.polledAt = Date.now()
      return { exit: false, items: pending() }
    },
    /** A heartbeat of a lane's invocation, forwarded only if that invocation is the lane's current one. */
    heartbeat: (workerId: string, generation: string, heartbeat: Heartbeat) =>
      Effect.suspend((): Effect.Effect<void, RejectedError | StoreError> => {
        const lane = lanes.get(workerId)
        if (lane === undefined || heartbeat.workerId !== workerId)
          return Effect.fail(new RejectedError({ reason: "unknown-worker", message: `no lane ${workerId}` }))
        if (!current(lane, generation)) return Effect.void
        const tracker = options.tracker()
        return tracker === undefined
          ? Effect.fail(
              new RejectedError({ reason: "unknown-instance", message: `no live instance ${options.instanceId}` })
            )
          : Effect.asVoid(tracker.heartbeat(heartbeat))
      }),
    /** Wakes every waiting poll (the instance is over). */
    close: () => {
      closed = true
      for (const lane of lanes.values()) wake(lane)
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// The invocation's side.

export interface LaneRunOptions {
  readonly start: LaneStart
  readonly jobs: (name: string) => Job | undefined
  /** The tracker link for reports, maps, context and results (plain HTTP to the object). */
  readonly link: TrackerLink
  readonly poll: (poll: LanePoll) => Effect.Effect<LanePollReply, unknown>
  readonly heartbeat: (generation: string, heartbeat: Heartbeat) => Effect.Effect<void, unknown>
  /** The invocation gives up after the object has not answered a poll for this long. */
  readonly giveUpMs?: number
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Runs one lane invocation to its end: core's worker runtime on the lane's slots, fed by the start items
 * and the polled mailbox. The invocation holds nothing once every task it was given has had its final
 * status accepted by the tracker (or was stopped); then it asks to leave.
 */
export const runLane = async (options: LaneRunOptions): Promise<void> => {
  const { start } = options
  const link: TrackerLink = {
    ...options.link,
    heartbeat: (heartbeat) =>
      options
        .heartbeat(start.generation, heartbeat)
        .pipe(
          Effect.mapError((error) =>
            error instanceof RejectedError || error instanceof TransportError
              ? error
              : new TransportError({ reason: "unreachable", message: String(error) })
          )
        )
  }
  // Core's on-demand worker knows when it holds nothing: then the invocation asks to leave.
  const worker = makeOnDemandWorker({
    id: start.lane,
    slots: start.slots,
    jobs: options.jobs,
    connect: () => link,
    heartbeatInterval: start.heartbeatInterval
  })
  /** Refusals not yet told to the object: they go with every poll until one is answered. */
  let refused: Array<{ readonly seq: number; readonly message: string }> = []
  let ack = -1
  const apply = (item: LaneItem) => {
    ack = Math.max(ack, item.seq)
    const refusal = item.batch === undefined ? undefined : worker.deliver(item.batch)
    if (refusal !== undefined) refused.push({ seq: item.seq, message: refusal.message })
    if (item.stop !== undefined) worker.stop(item.stop)
  }
  try {
    for (const item of start.items) apply(item)
    let failingSince: number | undefined
    for (;;) {
      const told = refused
      const exit = await Effect.runPromiseExit(
        options.poll({
          generation: start.generation,
          ack,
          idle: !worker.running(),
          ...(told.length > 0 ? { refused: told } : {})
        })
      )
      if (Exit.isFailure(exit)) {
        failingSince ??= Date.now()
        if (Date.now() - failingSince > (options.giveUpMs ?? 30_000)) return
        await sleep(200)
        continue
      }
      failingSince = undefined
      refused = refused.filter((entry) => !told.includes(entry))
      if (exit.value.exit) return
      for (const item of exit.value.items) if (item.seq > ack) apply(item)
    }
  } finally {
    worker.close()
  }
}

/** A lane invocation's answer: a stream open while `work` runs, ending with LANE_DONE if the lane ended on its own. */
export const laneResponse = (
  work: Promise<void>,
  ctx: { readonly waitUntil: (promise: Promise<unknown>) => void }
): Response => {
  const encoder = new TextEncoder()
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>()
  const writer = writable.getWriter()
  const line = (text: string) => writer.write(encoder.encode(`${text}\n`))
  ctx.waitUntil(
    work
      .then(
        () => line(LANE_DONE),
        (error: unknown) => line(`failed: ${String(error)}`)
      )
      .finally(() => writer.close())
      .catch(() => undefined)
  )
  return new Response(readable, { status: 202, headers: { "content-type": "text/plain; charset=utf-8" } })
}

export type LaneSet = ReturnType<typeof makeLaneSet>
