import { Clock, Deferred, Duration, Effect, Option, Queue, Schedule, Scope } from "effect"
import { jobMetrics } from "./metrics.ts"
import { createInstance, restoreInstance } from "../machine/instance.ts"
import { progressSnapshot } from "../machine/progress.ts"
import { step } from "../machine/step.ts"
import type { MachineEvent, MachineState, ReplyValue, StandingWorker, StepOutput } from "../machine/state.ts"
import type { ReportsReply } from "../model/messages.ts"
import type { JobConfig } from "../model/config.ts"
import { RejectedError, StoreError, TransportError } from "../model/errors.ts"
import type { JobKind, Outcome, Progress } from "../model/instance.ts"
import type {
  ContextAppend,
  Heartbeat,
  HeartbeatReply,
  MapRequest,
  PullRequest,
  ReportBatch,
  TaskBatch
} from "../model/messages.ts"
import { toTaskError } from "../model/task-error.ts"
import { isTerminal } from "../model/status.ts"
import { TaskStore, type StoredResult } from "../ports/task-store.ts"
import { Transport } from "../ports/transport.ts"

export type TrackerError = RejectedError | StoreError

/** The tracker of one instance, as workers and the owner see it. */
export interface Tracker {
  readonly instanceId: string
  readonly map: (request: MapRequest) => Effect.Effect<number, TrackerError>
  readonly report: (batch: ReportBatch) => Effect.Effect<ReportsReply, TrackerError>
  readonly heartbeat: (heartbeat: Heartbeat) => Effect.Effect<HeartbeatReply, TrackerError>
  readonly pull: (request: PullRequest) => Effect.Effect<TaskBatch | null, TrackerError>
  readonly appendContext: (request: ContextAppend) => Effect.Effect<boolean, TrackerError>
  /** Kill the instance (taskId null) or one task (R-FIN-7). */
  readonly kill: (taskId: string | null, reason: string) => Effect.Effect<void, TrackerError>
  /** A page of terminal results of a run, in seq order: what the final task reads. */
  readonly readResults: (
    run: number,
    afterSeq: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<StoredResult>, StoreError>
  readonly progress: Effect.Effect<Progress>
  /** Calls `listener` with every progress push (R-PROG-2); returns the unsubscribe function. */
  readonly onProgress: (listener: (progress: Progress) => void) => () => void
  /** Waits for the outcome. */
  readonly outcome: Effect.Effect<Outcome>
  /** Waits until the owner acknowledged the outcome and the tracker let go of the instance. */
  readonly released: Effect.Effect<void>
  /** Runs a step now (a timer fired): what is due by then happens. Extra ticks change nothing. */
  readonly tick: Effect.Effect<void>
  /** The transport saw `workerId` end without its closing word: what it held is lost now (R-WORK-7). */
  readonly workerGone: (workerId: string, reason: string) => Effect.Effect<void>
}

export interface TrackerHooks {
  /**
   * Takes the tracker's timer over: called after every step with the earliest time at which a tick has
   * something to do (null: none), and the tracker sets no timer of its own. The adapter calls `tick` at or
   * after that time (a Durable Object's alarm). Without it the tracker waits with Effect's clock.
   */
  readonly onWake?: (at: number | null) => void
  /** Capacity the host starts on demand, candidates without heartbeats while idle (R-WORK-6). */
  readonly standing?: ReadonlyArray<StandingWorker>
}

export interface NewTrackerOptions extends TrackerHooks {
  readonly instanceId: string
  readonly job: string
  readonly kind: JobKind
  readonly config: JobConfig
  /** JSON text. */
  readonly params: string
  readonly localWorkerId: string
  readonly seed?: number
}

/**
 * A step this much later than the tracker asked to wake (or half a heartbeat, if less) means its thread was stalled.
 */
const STALL_MS = 1_000

/** Store writes are retried this many times before the instance fails with "storage failure" (R-RETRY-4). */
const STORE_RETRIES = 3

const hashSeed = (text: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return hash | 0
}

interface Envelope {
  readonly event: MachineEvent
}

const rejected = (reason: RejectedError["reason"], message: string) => new RejectedError({ reason, message })

const runTracker = (
  state: MachineState,
  hooks: TrackerHooks
): Effect.Effect<Tracker, never, TaskStore | Transport | Scope.Scope> =>
  Effect.gen(function* () {
    const store = yield* TaskStore
    const transport = yield* Transport
    // Sends outlive the step that made them (the last stops go out after release), not the tracker's scope.
    const scope = yield* Scope.Scope
    const inbox = yield* Queue.unbounded<Envelope>()
    const pending = new Map<number, Deferred.Deferred<ReplyValue, TrackerError>>()
    const listeners = new Set<(progress: Progress) => void>()
    const outcome = Deferred.makeUnsafe<Outcome>()
    const released = Deferred.makeUnsafe<void>()
    let nextReply = 0
    let closed = false

    /** Every message names its instance; one for another instance changes nothing here (R-STATE-4). */
    const call = (instanceId: string, make: (reply: number) => MachineEvent): Effect.Effect<ReplyValue, TrackerError> =>
      Effect.suspend(() => {
        if (instanceId !== state.instanceId) {
          return Effect.fail(rejected("unknown-instance", `this tracker runs ${state.instanceId}, not ${instanceId}`))
        }
        if (closed) return Effect.fail(rejected("unknown-instance", `instance ${state.instanceId} is released`))
        const reply = nextReply++
        const deferred = Deferred.makeUnsafe<ReplyValue, TrackerError>()
        pending.set(reply, deferred)
        Queue.offerUnsafe(inbox, { event: make(reply) })
        return Deferred.await(deferred)
      })

    const answer = (id: number, value: ReplyValue | TrackerError) => {
      const deferred = pending.get(id)
      if (deferred === undefined) return
      pending.delete(id)
      Deferred.doneUnsafe(
        deferred,
        value instanceof RejectedError || value instanceof StoreError ? Effect.fail(value) : Effect.succeed(value)
      )
    }

    /** Reported ids the machine no longer holds: terminal ones were repeats, the rest are unknown (R-STATE-4). */
    const settleUnknown = (reply: ReportsReply): Effect.Effect<ReportsReply, StoreError> =>
      reply.unknown.length === 0
        ? Effect.succeed(reply)
        : store.readTasks(state.instanceId, reply.unknown).pipe(
            Effect.map((rows) => {
              const terminal = new Set(rows.filter((row) => isTerminal(row.status)).map((row) => row.id))
              const rejectedIds = reply.unknown.filter((id) => !terminal.has(id))
              return {
                ...reply,
                dropped: reply.dropped + terminal.size,
                unknown: [],
                rejected: [
                  ...reply.rejected,
                  ...rejectedIds.map((taskId) => ({
                    taskId,
                    error: rejected("unknown-task", `task ${taskId} is not part of ${state.instanceId}`)
                  }))
                ]
              }
            })
          )

    // An owner that throws is an owner that did not take the outcome: it is offered again (R-FIN-6).
    const deliverOutcome = (value: Outcome) =>
      Effect.suspend(() => transport.deliverOutcome(state.instanceId, value)).pipe(
        Effect.catchDefect((defect) =>
          Effect.fail(
            new TransportError({
              reason: "rejected",
              message: `the owner of ${state.instanceId} threw: ${toTaskError(defect).message}`
            })
          )
        ),
        Effect.tapError((error) => Effect.logWarning(`outcome of ${state.instanceId} not taken yet: ${error.message}`)),
        Effect.retry(
          Schedule.exponential("50 millis").pipe(
            Schedule.modifyDelay((meta) => Effect.succeed(Math.min(Duration.toMillis(meta.duration), 5_000)))
          )
        ),
        Effect.andThen(Queue.offer(inbox, { event: { _tag: "OutcomeAcked" } }))
      )

    const metrics = jobMetrics(state.job)
    const perform = (output: StepOutput, now: number): Effect.Effect<void> =>
      Effect.gen(function* () {
        let out = output
        yield* metrics.redelivered(out.redelivered)
        if (out.write !== null) {
          const [took, failure] = yield* store.apply(out.write).pipe(
            Effect.retry(Schedule.recurs(STORE_RETRIES)),
            Effect.as(undefined),
            Effect.catch((error: StoreError) => Effect.succeed(error)),
            Effect.timed
          )
          yield* metrics.wrote(Duration.toMillis(took) / 1_000)
          if (failure !== undefined) {
            // Nothing of this step reached the store: its callers get the error and none of its tasks is sent.
            for (const reply of out.replies) answer(reply.id, failure)
            if (state.outcome === null)
              return yield* perform(step(state, [{ _tag: "StoreFailed", cause: failure.message }], now), now)
            // The outcome is known (the storage failure itself, or decided before): it still goes to the owner.
            out = { ...out, sends: [], replies: [] }
          }
        }
        for (const reply of out.replies) {
          const value = reply.value
          if (value instanceof RejectedError || value._tag !== "Reports") answer(reply.id, value)
          else {
            const settled = yield* Effect.result(settleUnknown(value.reply))
            answer(reply.id, settled._tag === "Success" ? { _tag: "Reports", reply: settled.success } : settled.failure)
          }
        }
        for (const warning of out.warnings) yield* Effect.logWarning(warning)
        if (out.progress !== null) for (const listener of listeners) listener(out.progress)
        if (out.outcome !== null) {
          Deferred.doneUnsafe(outcome, Effect.succeed(out.outcome))
          yield* Effect.forkChild(deliverOutcome(out.outcome))
        }
        // Sends and stops run beside the loop: a slow receiver (a send waits for its receipt) never holds the
        // next step; their answers come back as events (R-DISP-10).
        const sends = out.sends
        const stops = out.stops
        if (sends.length > 0 || stops.length > 0) {
          yield* Effect.forkIn(
            Effect.forEach(
              sends,
              ({ workerId, batch }) =>
                // The send's answer is the worker's receipt (R-DISP-10); a failure of any kind is counted by the
                // machine.
                Effect.suspend(() => transport.send(workerId, batch)).pipe(
                  Effect.tap(() => metrics.dispatched(batch.tasks.length)),
                  Effect.catchDefect((defect) =>
                    Effect.fail(new TransportError({ reason: "unreachable", message: toTaskError(defect).message }))
                  ),
                  Effect.matchEffect({
                    onSuccess: () => Queue.offer(inbox, { event: { _tag: "Delivered", workerId, seq: batch.seq } }),
                    onFailure: (error) =>
                      Queue.offer(inbox, {
                        event: {
                          _tag: "SendFailed",
                          workerId,
                          seq: batch.seq,
                          tooLarge: error.reason === "too-large",
                          error: error.message
                        }
                      })
                  })
                ),
              { concurrency: "unbounded", discard: true }
            ).pipe(
              Effect.andThen(
                Effect.forEach(
                  stops,
                  ({ workerId, message }) =>
                    Effect.ignoreCause(Effect.suspend(() => transport.stop(workerId, message))),
                  {
                    concurrency: "unbounded",
                    discard: true
                  }
                )
              )
            ),
            scope,
            { startImmediately: true }
          )
        }
        // The generator outlives the step in old space; holding its output would keep every write batch alive.
        output = null as never
        out = null as never
      })

    /** Everything waiting in the inbox, or nothing once `wakeAt` has come (a tick). */
    const nextEvents = (wakeAt: number | null): Effect.Effect<ReadonlyArray<Envelope>> =>
      Effect.gen(function* () {
        // With onWake the adapter owns the timer, due times in the past included (its alarm fires at once).
        if (wakeAt === null || hooks.onWake !== undefined) return yield* Queue.takeAll(inbox)
        const wait = wakeAt - (yield* Clock.currentTimeMillis)
        if (wait <= 0) return yield* Queue.clear(inbox)
        const taken = yield* Queue.takeAll(inbox).pipe(Effect.timeoutOption(wait))
        return Option.getOrElse(taken, () => [])
      })

    const loop = Effect.gen(function* () {
      let envelopes: ReadonlyArray<Envelope> = []
      let wakeAt: number | null = null
      let idleSince = 0
      for (;;) {
        const now = yield* Clock.currentTimeMillis
        // Woken far later than asked: this thread was busy (a long synchronous processor beside the tracker) at
        // some time since the last step, and the silence of the workers meanwhile is its own (R-DISP-10). The
        // whole wait is credited: a worker that died meanwhile is found at most one wait later. The stall comes first.
        const stalled = wakeAt !== null && now - wakeAt > Math.min(STALL_MS, state.config.heartbeatInterval / 2) ? 1 : 0
        const events: MachineEvent[] = new Array(envelopes.length + stalled)
        if (stalled === 1) events[0] = { _tag: "Stalled", ms: now - idleSince }
        for (let i = 0; i < envelopes.length; i++) events[i + stalled] = (envelopes[i] as Envelope).event
        const out = step(state, events, now)
        yield* perform(out, now)
        if (state.released) break
        hooks.onWake?.(out.wakeAt)
        wakeAt = out.wakeAt
        idleSince = yield* Clock.currentTimeMillis
        envelopes = yield* nextEvents(out.wakeAt)
      }
      close("released")
      Deferred.doneUnsafe(released, Effect.void)
    })

    /** No caller waits forever: on release, or when the tracker's scope closes (crash, eviction, shutdown). */
    const close = (why: string) => {
      closed = true
      for (const id of [...pending.keys()])
        answer(id, rejected("unknown-instance", `instance ${state.instanceId} is ${why}`))
    }
    yield* Effect.addFinalizer(() => Effect.sync(() => close("closed")))
    // Resumed after the outcome was decided but before the owner took it: it is sent again (R-FIN-6).
    if (state.outcome !== null) {
      Deferred.doneUnsafe(outcome, Effect.succeed(state.outcome))
      if (!state.outcomeAcked) yield* Effect.forkScoped(deliverOutcome(state.outcome))
    }
    yield* Effect.forkScoped(loop)

    const expect =
      <A>(tag: ReplyValue["_tag"], pick: (value: ReplyValue) => A) =>
      (value: ReplyValue) =>
        value._tag === tag
          ? Effect.succeed(pick(value))
          : Effect.die(new Error(`tracker answered ${value._tag} to a ${tag} call`))

    const tracker: Tracker = {
      instanceId: state.instanceId,
      map: (request) =>
        call(request.instanceId, (reply) => ({ _tag: "Map", request, reply })).pipe(
          Effect.flatMap(expect("Mapped", (value) => (value._tag === "Mapped" ? value.created : 0)))
        ),
      report: (batch) =>
        call(batch.instanceId, (reply) => ({ _tag: "Reports", batch, reply })).pipe(
          Effect.tap(() => metrics.reported(batch.reports.length)),
          Effect.flatMap(expect("Reports", (value) => (value as Extract<ReplyValue, { _tag: "Reports" }>).reply))
        ),
      heartbeat: (heartbeat) =>
        call(heartbeat.instanceId, (reply) => ({ _tag: "Heartbeat", heartbeat, reply })).pipe(
          Effect.flatMap(expect("Heartbeat", (value) => (value as Extract<ReplyValue, { _tag: "Heartbeat" }>).reply))
        ),
      pull: (request) =>
        call(request.instanceId, (reply) => ({ _tag: "Pull", request, reply })).pipe(
          Effect.flatMap(expect("Pulled", (value) => (value as Extract<ReplyValue, { _tag: "Pulled" }>).batch))
        ),
      appendContext: (request) =>
        call(request.instanceId, (reply) => ({ _tag: "Context", request, reply })).pipe(
          Effect.flatMap(expect("Context", (value) => (value as Extract<ReplyValue, { _tag: "Context" }>).accepted))
        ),
      kill: (taskId, reason) =>
        call(state.instanceId, (reply) => ({ _tag: "Kill", taskId, reason, reply })).pipe(Effect.asVoid),
      readResults: (run, afterSeq, limit) => store.readResults(state.instanceId, run, afterSeq, limit),
      progress: Effect.suspend(() => Clock.currentTimeMillis.pipe(Effect.map((now) => progressSnapshot(state, now)))),
      onProgress: (listener) => {
        listeners.add(listener)
        return () => listeners.delete(listener)
      },
      outcome: Deferred.await(outcome),
      released: Deferred.await(released),
      tick: Queue.offer(inbox, { event: { _tag: "Tick" } }).pipe(Effect.asVoid),
      workerGone: (workerId, reason) =>
        Queue.offer(inbox, { event: { _tag: "WorkerGone", workerId, reason } }).pipe(Effect.asVoid)
    }
    return tracker
  })

/** Starts the tracker of a new instance; its first write stores the instance and its root task. */
export const startTracker = (
  options: NewTrackerOptions
): Effect.Effect<Tracker, never, TaskStore | Transport | Scope.Scope> =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const state = createInstance(
      {
        instanceId: options.instanceId,
        job: options.job,
        kind: options.kind,
        config: options.config,
        params: options.params,
        localWorkerId: options.localWorkerId,
        seed: options.seed ?? hashSeed(options.instanceId),
        ...(options.standing === undefined ? {} : { standing: options.standing })
      },
      now
    )
    return yield* runTracker(state, options)
  })

/** Resumes a stored instance after a restart (R-REC-1). */
export const resumeTracker = (
  instanceId: string,
  localWorkerId: string,
  hooks: TrackerHooks = {}
): Effect.Effect<Tracker, RejectedError | StoreError, TaskStore | Transport | Scope.Scope> =>
  Effect.gen(function* () {
    const store = yield* TaskStore
    const stored = yield* store.load(instanceId)
    if (stored === undefined) return yield* rejected("unknown-instance", `no instance ${instanceId} is stored`)
    const now = yield* Clock.currentTimeMillis
    return yield* runTracker(restoreInstance(stored, localWorkerId, now, hooks.standing), hooks)
  })
