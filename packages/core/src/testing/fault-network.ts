/**
 * A memory network that misbehaves on purpose, for simulations (ARCHITECTURE: "System simulation").
 *
 * It is makeMemoryNetwork with a fault policy on every message: tracker → worker (send, stop), worker →
 * tracker (report, map, heartbeat, context, readResults, pull) and the outcome to the owner. A message may
 * be refused ("unreachable", nothing happens), lost on the way (nothing happens; the caller hears "timeout"
 * after `timeoutMs`), have its answer lost (it takes effect, the caller hears "timeout" or "unreachable"),
 * arrive twice (a copy follows after a drawn delay), be held up (Effect.sleep, so under a TestClock messages
 * overtake each other in simulated time), or be refused for its size ("too-large") when a send carries more
 * tasks or bytes, or a report more result bytes, than the drawn limits. `calm()` ends every fault: from then
 * on delivery is perfect (copies and delayed messages already on the way still arrive).
 *
 * Every draw comes from a small PRNG seeded by the caller, made when the message is handed over, so a run
 * is the same for the same seed and the same order of messages (no Math.random, no wall clock).
 *
 * A tracker that crashes (`crashTracker`) answers the calls it had in flight the way a dropped connection
 * would ("closed"), not with its own "unknown instance" (which tells a worker the instance is over); calls
 * that reach no tracker are "unreachable".
 */
import { Effect, type Scope } from "effect"
import { RejectedError, TransportError } from "../model/errors.ts"
import type { Outcome } from "../model/instance.ts"
import type { ReportBatch, TaskBatch } from "../model/messages.ts"
import type { TransportShape } from "../ports/transport.ts"
import type { Tracker } from "../tracker/tracker.ts"
import { toTaskError } from "../model/task-error.ts"
import type { LinkError, TrackerLink, WorkerHandle } from "../worker/runtime.ts"

/** Every kind of message the network carries. */
export type MessageKind =
  | "send"
  | "stop"
  | "outcome"
  | "report"
  | "map"
  | "heartbeat"
  | "context"
  | "readResults"
  | "pull"

export const MESSAGE_KINDS: ReadonlyArray<MessageKind> = [
  "send",
  "stop",
  "outcome",
  "report",
  "map",
  "heartbeat",
  "context",
  "readResults",
  "pull"
]

/** Probabilities (0..1) of each fault, drawn independently for every message. */
export interface FaultRates {
  /** Refused at once with "unreachable": nothing happens. */
  readonly refuse: number
  /** Lost on the way: nothing happens; the caller hears "timeout" after timeoutMs. */
  readonly lose: number
  /** The call takes effect but its answer is lost: the caller hears "timeout" (or "unreachable"). */
  readonly loseAnswer: number
  /** A copy of the message arrives as well, up to maxDelayMs later. */
  readonly duplicate: number
  /** The message, and separately its answer, is held up for up to maxDelayMs. */
  readonly delay: number
}

export interface FaultPolicy extends FaultRates {
  /** Longest hold-up of a delayed message or copy, in (simulated) milliseconds. */
  readonly maxDelayMs: number
  /** How long a caller waits for a lost message before it hears "timeout". */
  readonly timeoutMs: number
  /** A send with more tasks than this is refused with "too-large". */
  readonly maxSendTasks?: number | undefined
  /** A send with more bytes than this (see `batchBytes`) is refused with "too-large". */
  readonly maxSendBytes?: number | undefined
  /** A report carrying more result bytes than this is refused with "too-large". */
  readonly maxReportBytes?: number | undefined
  /** Rates for some kinds of message, over the common ones. */
  readonly byKind?: Partial<Record<MessageKind, Partial<FaultRates>>>
}

export const noFaults: FaultPolicy = {
  refuse: 0,
  lose: 0,
  loseAnswer: 0,
  duplicate: 0,
  delay: 0,
  maxDelayMs: 0,
  timeoutMs: 0
}

/** The size the network gives a batch: ids, names, bodies, a fixed overhead per task, and the params if sent. */
export const batchBytes = (batch: TaskBatch): number => {
  let bytes = batch.params?.length ?? 0
  for (const task of batch.tasks) {
    bytes +=
      32 + task.id.length + task.name.length + (typeof task.body === "string" ? task.body.length : task.body.byteLength)
  }
  return bytes
}

/** The result and error bytes a report message carries. */
export const reportBytes = (batch: ReportBatch): number => {
  let bytes = 0
  for (const report of batch.reports) bytes += (report.result?.length ?? 0) + (report.error === undefined ? 0 : 256)
  return bytes
}

/** mulberry32: a small, fast, seedable PRNG. */
export const makeRandom = (seed: number): (() => number) => {
  let a = seed | 0
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export type FaultName = "refused" | "lost" | "lost-answer" | "duplicated" | "delayed" | "too-large" | "closed" | "sunk"

export interface FaultNetwork {
  readonly transport: TransportShape
  /** A worker's link to the tracker of an instance, found at every call (it may crash and come back). */
  readonly link: (instanceId: string) => TrackerLink
  readonly addWorker: (worker: WorkerHandle) => void
  /** The worker is gone (crashed): messages to it are "unreachable". */
  readonly removeWorker: (workerId: string) => void
  /**
   * From now on, calm or not, batches sent to the worker are never answered: a peer that heartbeats and takes
   * batches but never acknowledges one (R-WIRE-3).
   */
  readonly sink: (workerId: string) => void
  readonly addTracker: (tracker: Tracker) => void
  readonly removeTracker: (instanceId: string) => void
  /** The tracker's process died: calls it had in flight fail with "closed", new ones are "unreachable". */
  readonly crashTracker: (instanceId: string) => void
  readonly setOwner: (instanceId: string, owner: (outcome: Outcome) => void) => void
  /** No more faults from now on. */
  readonly calm: () => void
  readonly isCalm: () => boolean
  /** How many messages met each fault, by kind of message: "send:lost" → 3. */
  readonly stats: Map<string, number>
}

export interface FaultNetworkOptions {
  readonly seed: number
  readonly policy: FaultPolicy
}

interface TrackerEntry {
  readonly tracker: Tracker
  crashed: boolean
}

const transportError = (reason: TransportError["reason"], message: string) => new TransportError({ reason, message })

/**
 * Builds a fault network; copies of messages and delayed deliveries run in fibers of the caller's scope,
 * with the caller's services (under a TestClock, they wait in simulated time).
 */
export const makeFaultNetwork = (options: FaultNetworkOptions): Effect.Effect<FaultNetwork, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const random = makeRandom(options.seed)
    const policy = options.policy
    const workers = new Map<string, WorkerHandle>()
    const sinks = new Set<string>()
    const trackers = new Map<string, TrackerEntry>()
    const owners = new Map<string, (outcome: Outcome) => void>()
    const stats = new Map<string, number>()
    let calm = false

    const note = (kind: MessageKind, fault: FaultName) => {
      const key = `${kind}:${fault}`
      stats.set(key, (stats.get(key) ?? 0) + 1)
    }
    const rate = (kind: MessageKind, fault: keyof FaultRates): number => policy.byKind?.[kind]?.[fault] ?? policy[fault]
    const chance = (kind: MessageKind, fault: keyof FaultRates): boolean => {
      const p = rate(kind, fault)
      // Always draw, so one fault's rate does not shift the draws of the others.
      const drawn = random()
      return p > 0 && drawn < p
    }
    const holdUp = (): number => Math.floor(random() * (policy.maxDelayMs + 1))

    /**
     * One message through the faults. `oversize` says whether it is over a size limit; `call` delivers it
     * (and is called once more for a copy).
     */
    const through = <A, E>(
      kind: MessageKind,
      what: string,
      oversize: boolean,
      call: () => Effect.Effect<A, E>
    ): Effect.Effect<A, E | TransportError> =>
      Effect.suspend((): Effect.Effect<A, E | TransportError> => {
        if (calm) return call()
        if (oversize) {
          note(kind, "too-large")
          return Effect.fail(transportError("too-large", `${what} is too large for the receiver`))
        }
        const refuse = chance(kind, "refuse")
        const lose = chance(kind, "lose")
        const loseAnswer = chance(kind, "loseAnswer")
        const duplicate = chance(kind, "duplicate")
        const delayed = chance(kind, "delay")
        const before = delayed ? holdUp() : 0
        const answerDelayed = chance(kind, "delay")
        const after = answerDelayed ? holdUp() : 0
        const copyAfter = holdUp()
        const answerLostAs = random() < 0.5 ? "timeout" : "unreachable"
        if (refuse) {
          note(kind, "refused")
          return Effect.fail(transportError("unreachable", `${what}: connection refused`))
        }
        if (lose) {
          note(kind, "lost")
          return Effect.sleep(policy.timeoutMs).pipe(
            Effect.andThen(Effect.fail(transportError("timeout", `${what}: no answer (the message was lost)`)))
          )
        }
        return Effect.gen(function* () {
          if (before > 0) {
            note(kind, "delayed")
            yield* Effect.sleep(before)
          }
          if (duplicate) {
            note(kind, "duplicated")
            yield* Effect.forkIn(
              Effect.ignore(Effect.sleep(copyAfter).pipe(Effect.andThen(Effect.suspend(call)))),
              scope
            )
          }
          const result = yield* Effect.result(call())
          if (after > 0) yield* Effect.sleep(after)
          if (loseAnswer) {
            note(kind, "lost-answer")
            return yield* transportError(answerLostAs, `${what}: the answer was lost`)
          }
          if (result._tag === "Failure") return yield* Effect.fail(result.failure)
          return result.success
        })
      })

    const worker = (workerId: string) => workers.get(workerId)

    const transport: TransportShape = {
      send: (workerId, batch) =>
        sinks.has(workerId)
          ? Effect.sync(() => note("send", "sunk")).pipe(Effect.andThen(Effect.never))
          : through(
              "send",
              `batch ${batch.seq} to ${workerId}`,
              (policy.maxSendTasks !== undefined && batch.tasks.length > policy.maxSendTasks) ||
                (policy.maxSendBytes !== undefined && batchBytes(batch) > policy.maxSendBytes),
              () =>
                Effect.suspend(() => {
                  const found = worker(workerId)
                  if (found === undefined)
                    return Effect.fail(transportError("unreachable", `worker ${workerId} is not reachable`))
                  const refused = found.deliver(batch)
                  return refused === undefined ? Effect.void : Effect.fail(transportError("rejected", refused.message))
                })
            ),
      stop: (workerId, message) =>
        through("stop", `stop to ${workerId}`, false, () =>
          Effect.suspend(() => {
            const found = worker(workerId)
            if (found === undefined)
              return Effect.fail(transportError("unreachable", `worker ${workerId} is not reachable`))
            found.stop(message)
            return Effect.void
          })
        ),
      deliverOutcome: (instanceId, outcome) =>
        through("outcome", `outcome of ${instanceId}`, false, () =>
          Effect.suspend(() => {
            const owner = owners.get(instanceId)
            if (owner === undefined)
              return Effect.fail(transportError("unreachable", `the owner of ${instanceId} is not reachable`))
            try {
              owner(outcome)
            } catch (error) {
              return Effect.fail(
                transportError("rejected", `the owner of ${instanceId} threw: ${toTaskError(error).message}`)
              )
            }
            return Effect.void
          })
        )
    }

    /** A call to the tracker of `instanceId` as it is when the message arrives. */
    const toTracker = <A>(
      kind: MessageKind,
      instanceId: string,
      use: (tracker: Tracker) => Effect.Effect<A, LinkError>
    ): Effect.Effect<A, LinkError> =>
      Effect.suspend(() => {
        const entry = trackers.get(instanceId)
        if (entry === undefined)
          return Effect.fail(transportError("unreachable", `the tracker of ${instanceId} is not reachable`))
        return use(entry.tracker).pipe(
          Effect.catch((error: LinkError) => {
            // A dropped connection, not the tracker's word that the instance is over.
            if (entry.crashed && error instanceof RejectedError && error.reason === "unknown-instance") {
              note(kind, "closed")
              return Effect.fail(transportError("closed", `the tracker of ${instanceId} went away`))
            }
            return Effect.fail(error)
          })
        )
      })

    const link = (instanceId: string): TrackerLink => ({
      report: (batch) =>
        through(
          "report",
          `report ${batch.n ?? "?"} of ${batch.workerId}`,
          policy.maxReportBytes !== undefined && reportBytes(batch) > policy.maxReportBytes,
          () => toTracker("report", instanceId, (found) => found.report(batch))
        ),
      map: (request) =>
        through("map", `map call of ${request.taskId}`, false, () =>
          toTracker("map", instanceId, (found) => found.map(request))
        ),
      heartbeat: (heartbeat) =>
        through("heartbeat", `heartbeat of ${heartbeat.workerId}`, false, () =>
          toTracker("heartbeat", instanceId, (found) => found.heartbeat(heartbeat))
        ),
      appendContext: (request) =>
        through("context", `context append of ${request.taskId}`, false, () =>
          toTracker("context", instanceId, (found) => found.appendContext(request))
        ),
      readResults: (run, afterSeq, limit) =>
        through("readResults", `results after ${afterSeq}`, false, () =>
          toTracker("readResults", instanceId, (found) => found.readResults(run, afterSeq, limit))
        ),
      pull: (request) =>
        through("pull", `pull of ${request.workerId}`, false, () =>
          toTracker("pull", instanceId, (found) => found.pull(request))
        )
    })

    return {
      transport,
      link,
      addWorker: (handle) => void workers.set(handle.id, handle),
      removeWorker: (workerId) => void workers.delete(workerId),
      sink: (workerId) => void sinks.add(workerId),
      addTracker: (tracker) => void trackers.set(tracker.instanceId, { tracker, crashed: false }),
      removeTracker: (instanceId) => void trackers.delete(instanceId),
      crashTracker: (instanceId) => {
        const entry = trackers.get(instanceId)
        if (entry === undefined) return
        entry.crashed = true
        trackers.delete(instanceId)
      },
      setOwner: (instanceId, owner) => void owners.set(instanceId, owner),
      calm: () => {
        calm = true
      },
      isCalm: () => calm,
      stats
    }
  })
