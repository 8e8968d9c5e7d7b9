/**
 * Lanes: how a Durable Object tracker gets sub-tasks run in Worker invocations.
 *
 * A lane is one worker id (`lane-0`, `lane-1`, …) with a fixed number of slots, and at most one Worker
 * invocation at a time. The first batch sent to an idle lane starts an invocation (a fetch through a
 * service binding); later batches and stops for it wait in the lane's mailbox in the object, which the
 * invocation long-polls. When the invocation holds nothing and its mailbox is empty it asks to leave, and
 * the object, single-threaded, lets it go only if nothing arrived meanwhile. So a lane's heartbeats are
 * always true: while no invocation runs, the object heartbeats the lane as idle (any slot is free, a send
 * starts a fresh invocation); while one runs, the invocation's worker runtime heartbeats for itself.
 * An invocation that dies (its response stream ends without its closing line, or it goes silent) makes the
 * lane idle again, and the idle heartbeat hands its acknowledged tasks back to the tracker (R-WORK-3).
 */
import { RejectedError, TransportError, type Job, type StoreError } from "@taskfold/core"
import { Heartbeat, startWorker, StopMessage, TaskBatch, type Tracker, type TrackerLink } from "@taskfold/core/adapter"
import { Deferred, Effect, Exit, Schema, Scope } from "effect"

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

/** Invocation → object: what I have taken, and whether I hold nothing. */
export const LanePoll = Schema.Struct({
  generation: Id,
  ack: Schema.Int.check(Schema.isGreaterThanOrEqualTo(-1)),
  idle: Schema.Boolean
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

// ---------------------------------------------------------------------------------------------------------
// The object's side.

type LaneState = "unknown" | "idle" | "running"

interface Lane {
  readonly id: string
  /** unknown: after a restart, until its invocation shows up or the grace period ends. */
  state: LaneState
  generation: string | null
  lastContact: number
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
  /** A running invocation silent this long is taken for dead. */
  readonly contactTimeout: number
  /** How long a poll waits for an item before it answers empty. */
  readonly pollWaitMs: number
  /** After a restart: how long invocations started by the previous incarnation get to show up. */
  readonly graceMs: number
  readonly tracker: () => Tracker | undefined
  /** Starts an invocation; resolves once it accepted (2xx) with its response, whose stream ends when it does. */
  readonly start: (start: LaneStart) => Promise<Response>
}

export const laneId = (n: number) => `lane-${n}`

export interface LaneSet {
  readonly has: (workerId: string) => boolean
  readonly send: (workerId: string, batch: TaskBatch) => Effect.Effect<void, TransportError>
  readonly stop: (workerId: string, message: StopMessage) => Effect.Effect<void, TransportError>
  readonly poll: (workerId: string, poll: LanePoll) => Promise<LanePollReply>
  /** A heartbeat of a lane's invocation, forwarded only if that invocation is the lane's current one. */
  readonly heartbeat: (
    workerId: string,
    generation: string,
    heartbeat: Heartbeat
  ) => Effect.Effect<void, RejectedError | StoreError>
  /** Heartbeats idle lanes and gives up on silent invocations (on every alarm). */
  readonly refresh: Effect.Effect<void>
  /** `refresh`, if the last one is a heartbeatInterval old (on every request the object serves). */
  readonly refreshIfStale: Effect.Effect<void>
  /** Wakes every waiting poll (the instance is over). */
  readonly close: () => void
}

/** The last line of a lane invocation's answer when it ended on its own; an answer that ends without it is a crash. */
export const LANE_DONE = "done"

/**
 * `unconfirmed`: after a restart, the lanes the store shows holding live tasks. Their invocations may have
 * outlived the old incarnation: they get `graceMs` to show up before the lane is taken for idle (which
 * hands their acknowledged tasks back). Other lanes are idle at once.
 */
export const makeLaneSet = (options: LaneSetOptions, unconfirmed: ReadonlySet<string> = new Set()): LaneSet => {
  const startedAt = Date.now()
  const lanes = new Map<string, Lane>()
  for (let n = 0; n < options.count; n++) {
    const id = laneId(n)
    lanes.set(id, {
      id,
      state: unconfirmed.has(id) ? "unknown" : "idle",
      generation: null,
      lastContact: startedAt,
      mailbox: [],
      nextSeq: 0,
      waiters: new Set(),
      receipts: new Map()
    })
  }
  let closed = false
  let lastRefresh = Number.NEGATIVE_INFINITY
  /** The instance's params, from the first batch that carried them: every new invocation needs them. */
  let params: string | undefined

  const wake = (lane: Lane) => {
    for (const waiter of lane.waiters) waiter()
    lane.waiters.clear()
  }

  const idleHeartbeat = (lane: Lane): Heartbeat => ({
    instanceId: options.instanceId,
    workerId: lane.id,
    slots: options.slots,
    freeSlots: options.slots,
    queueLength: 0,
    idle: true
  })

  /** A batch the invocation took (its poll acknowledged it): its send succeeds. */
  const taken = (lane: Lane, ack: number) => {
    for (const [seq, receipt] of lane.receipts) {
      if (seq > ack) continue
      lane.receipts.delete(seq)
      Deferred.doneUnsafe(receipt, Effect.void)
    }
  }

  /** Batches the invocation never took: their sends fail, which counts toward maxRedeliveries (R-DISP-10). */
  const untaken = (lane: Lane, why: string) => {
    for (const receipt of lane.receipts.values()) {
      Deferred.doneUnsafe(
        receipt,
        Effect.fail(
          new TransportError({ reason: "unreachable", message: `${lane.id}: ${why} before it took the batch` })
        )
      )
    }
    lane.receipts.clear()
  }

  /** The lane's invocation is gone: its undelivered items are dropped and their sends fail. */
  const ended = (lane: Lane) => {
    lane.state = "idle"
    lane.generation = null
    lane.mailbox = []
    untaken(lane, "the invocation ended")
    wake(lane)
  }

  /** A batch item for the lane whose send completes once the invocation takes it. */
  const receiptOf = (lane: Lane, seq: number): Effect.Effect<void, TransportError> => {
    const receipt = Deferred.makeUnsafe<void, TransportError>()
    lane.receipts.set(seq, receipt)
    return Deferred.await(receipt)
  }

  /** Reads an invocation's response to its end; an end without the closing line is a crash. */
  const watch = (lane: Lane, generation: string, response: Response) => {
    const read = async () => {
      let text = ""
      if (response.body !== null) {
        const decoder = new TextDecoder()
        const reader = response.body.getReader()
        for (;;) {
          const chunk = await reader.read()
          if (chunk.done) break
          text = (text + decoder.decode(chunk.value, { stream: true })).slice(-64)
        }
      }
      return text.trim().endsWith(LANE_DONE)
    }
    void read()
      .catch(() => false)
      .then((clean) => {
        if (lane.generation !== generation) return
        ended(lane)
        if (!clean) void Effect.runPromise(refreshLane(lane))
      })
  }

  const start = (lane: Lane, item: LaneItem): Effect.Effect<void, TransportError> =>
    Effect.tryPromise({
      try: async () => {
        const generation = crypto.randomUUID()
        lane.state = "running"
        lane.generation = generation
        lane.lastContact = Date.now()
        lane.mailbox = []
        let response: Response
        try {
          response = await options.start({
            instanceId: options.instanceId,
            lane: lane.id,
            generation,
            slots: options.slots,
            heartbeatInterval: options.heartbeatInterval,
            items: [item]
          })
        } catch (cause) {
          if (lane.generation === generation) ended(lane)
          throw cause
        }
        if (!response.ok) {
          if (lane.generation === generation) ended(lane)
          await response.body?.cancel()
          throw new Error(`the lane's Worker answered ${response.status}`)
        }
        watch(lane, generation, response)
      },
      catch: (cause) =>
        new TransportError({
          reason: "unreachable",
          message: `${lane.id}: ${cause instanceof Error ? cause.message : String(cause)}`
        })
    })

  const enqueue = (lane: Lane, item: Omit<LaneItem, "seq">): number => {
    const seq = lane.nextSeq++
    lane.mailbox.push({ ...item, seq })
    wake(lane)
    return seq
  }

  const trackerHeartbeat = (heartbeat: Heartbeat) =>
    Effect.suspend(() => {
      const tracker = options.tracker()
      return tracker === undefined ? Effect.void : Effect.ignore(tracker.heartbeat(heartbeat))
    })

  const refreshLane = (lane: Lane): Effect.Effect<void> =>
    Effect.suspend(() => {
      const now = Date.now()
      if (lane.state === "running" && now - lane.lastContact > options.contactTimeout) ended(lane)
      if (lane.state === "unknown" && now - startedAt >= options.graceMs) lane.state = "idle"
      return lane.state === "idle" ? trackerHeartbeat(idleHeartbeat(lane)) : Effect.void
    })

  const refreshAll = Effect.suspend(() => {
    lastRefresh = Date.now()
    return Effect.forEach([...lanes.values()], refreshLane, { discard: true })
  })

  /** Adopts an invocation the object did not start (it outlived a restart) if the lane has no other. */
  const current = (lane: Lane, generation: string): boolean => {
    if (lane.generation === generation) return true
    if (lane.state === "running") return false
    lane.state = "running"
    lane.generation = generation
    lane.mailbox = []
    untaken(lane, "another invocation took the lane over")
    return true
  }

  return {
    has: (workerId) => lanes.has(workerId),
    send: (workerId, batch) =>
      Effect.suspend(() => {
        if (batch.params !== undefined) params = batch.params
        const lane = lanes.get(workerId)
        if (lane === undefined || closed)
          return Effect.fail(new TransportError({ reason: "unreachable", message: `no lane ${workerId}` }))
        if (lane.state === "running") return receiptOf(lane, enqueue(lane, { batch }))
        if (lane.state === "unknown") {
          return Effect.fail(
            new TransportError({ reason: "unreachable", message: `${workerId} is not confirmed since the restart` })
          )
        }
        const seq = lane.nextSeq++
        const receipt = receiptOf(lane, seq)
        // A fresh invocation has no params yet: its first batch brings them even if the tracker left them out.
        return start(lane, {
          seq,
          batch: batch.params === undefined && params !== undefined ? { ...batch, params } : batch
        }).pipe(Effect.andThen(receipt))
      }),
    stop: (workerId, message) =>
      Effect.sync(() => {
        const lane = lanes.get(workerId)
        if (lane !== undefined && lane.state === "running") enqueue(lane, { stop: message })
      }),
    poll: async (workerId, poll) => {
      const lane = lanes.get(workerId)
      if (lane === undefined || closed || !current(lane, poll.generation)) return { exit: true, items: [] }
      lane.lastContact = Date.now()
      taken(lane, poll.ack)
      const pending = () => lane.mailbox.filter((item) => item.seq > poll.ack)
      lane.mailbox = pending()
      if (lane.mailbox.length > 0) return { exit: false, items: lane.mailbox }
      if (poll.idle) {
        // Nothing held, nothing waiting: the invocation may go; the next send starts a fresh one.
        ended(lane)
        return { exit: true, items: [] }
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          lane.waiters.delete(done)
          resolve()
        }, options.pollWaitMs)
        const done = () => {
          clearTimeout(timer)
          resolve()
        }
        lane.waiters.add(done)
      })
      if (closed || lane.generation !== poll.generation) return { exit: true, items: [] }
      lane.lastContact = Date.now()
      return { exit: false, items: pending() }
    },
    heartbeat: (workerId, generation, heartbeat) =>
      Effect.suspend(() => {
        const lane = lanes.get(workerId)
        if (lane === undefined || heartbeat.workerId !== workerId) {
          return Effect.fail(new RejectedError({ reason: "unknown-worker", message: `no lane ${workerId}` }))
        }
        if (!current(lane, generation)) return Effect.void
        lane.lastContact = Date.now()
        const tracker = options.tracker()
        return tracker === undefined
          ? Effect.fail(
              new RejectedError({ reason: "unknown-instance", message: `no live instance ${options.instanceId}` })
            )
          : tracker.heartbeat(heartbeat)
      }),
    refresh: refreshAll,
    refreshIfStale: Effect.suspend(() =>
      Date.now() - lastRefresh >= options.heartbeatInterval ? refreshAll : Effect.void
    ),
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
  const scope = Effect.runSync(Scope.make())
  const held = new Set<string>()
  const key = (taskId: string, attempt: number) => `${taskId}#${attempt}`
  const link: TrackerLink = {
    ...options.link,
    report: (batch) =>
      options.link.report(batch).pipe(
        Effect.tap(() =>
          Effect.sync(() => {
            for (const report of batch.reports) if (report.status >= 5) held.delete(key(report.taskId, report.attempt))
          })
        )
      ),
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
  try {
    const worker = await Effect.runPromise(
      startWorker({
        id: start.lane,
        slots: start.slots,
        jobs: options.jobs,
        connect: () => link,
        heartbeatInterval: start.heartbeatInterval
      }).pipe(Scope.provide(scope))
    )
    const apply = (item: LaneItem) => {
      if (item.batch !== undefined) {
        for (const task of item.batch.tasks) held.add(key(task.id, task.attempt))
        worker.deliver(item.batch)
      }
      if (item.stop !== undefined) {
        worker.stop(item.stop)
        if (item.stop.taskIds === null) held.clear()
        else {
          const stopped = new Set(item.stop.taskIds)
          for (const entry of [...held]) if (stopped.has(entry.slice(0, entry.lastIndexOf("#")))) held.delete(entry)
        }
      }
    }
    let ack = -1
    for (const item of start.items) {
      apply(item)
      ack = Math.max(ack, item.seq)
    }
    let failingSince: number | undefined
    for (;;) {
      const exit = await Effect.runPromiseExit(
        options.poll({ generation: start.generation, ack, idle: held.size === 0 })
      )
      if (Exit.isFailure(exit)) {
        failingSince ??= Date.now()
        if (Date.now() - failingSince > (options.giveUpMs ?? 30_000)) return
        await sleep(200)
        continue
      }
      failingSince = undefined
      if (exit.value.exit) return
      for (const item of exit.value.items) {
        if (item.seq <= ack) continue
        apply(item)
        ack = item.seq
      }
    }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
