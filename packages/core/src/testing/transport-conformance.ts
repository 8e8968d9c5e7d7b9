/**
 * The behaviour every Transport must have, as a vitest suite (ARCHITECTURE: "Conformance"), like
 * task-store-conformance.ts for stores. A runner calls `transportConformance(name, makeFixture)` with a
 * factory that builds the tracker's side of one transport and worker endpoints behind it, and, where the
 * transport has one, the worker → tracker link.
 *
 * A worker endpoint behaves as core's worker runtime does at its door: it takes every batch, except one
 * that leaves out the params of an instance it holds no params of, which it refuses (RejectedError). A
 * runner whose far end can hold any WorkerHandle puts a `conformanceWorker` there; one whose far end runs
 * core's runtime records the batches and stops as they reach it. Trackers behind a link are
 * `conformanceTracker`s: they record every call and answer in a fixed way the suite checks on this side.
 *
 * A case a transport does not meet yet is named in `knownGaps` with the reason: it runs as `it.fails`, so the
 * suite stays green and says so the day the transport is fixed.
 */
import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { RejectedError, StoreError, TransportError } from "../model/errors.ts"
import type { Outcome } from "../model/instance.ts"
import type {
  ContextAppend,
  DispatchedTask,
  Heartbeat,
  HeartbeatReply,
  MapRequest,
  PullRequest,
  ReportBatch,
  ReportsReply,
  StopMessage,
  TaskBatch
} from "../model/messages.ts"
import { TaskKind, TaskStatus } from "../model/status.ts"
import type { StoredResult } from "../ports/task-store.ts"
import type { TransportShape } from "../ports/transport.ts"
import type { Tracker } from "../tracker/tracker.ts"
import type { LinkError, TrackerLink, WorkerHandle } from "../worker/runtime.ts"

/**
 * The job every batch of the suite names. A far end that runs core's runtime serves a job of this name whose
 * tasks hold their slot until they are stopped, so the worker still holds them when the suite's stops arrive.
 */
export const CONFORMANCE_JOB = "conformance"

/** What reached one worker endpoint through the transport, in the order it arrived. */
export interface Received {
  readonly batches: ReadonlyArray<TaskBatch>
  readonly stops: ReadonlyArray<StopMessage>
}

export interface DeliveredOutcome {
  readonly instanceId: string
  readonly outcome: Outcome
}

/** The worker → tracker side of a transport. */
export interface LinkFixture {
  /** Puts a tracker behind the link's far end (the suite gives a conformanceTracker). */
  readonly addTracker: (tracker: Tracker) => Promise<void>
  /** The link worker `workerId` (one of `workers()`) uses to reach the tracker of `instanceId`. */
  readonly connect: (workerId: string, instanceId: string) => TrackerLink
}

export interface TransportFixture {
  /** The tracker's side under test. */
  readonly transport: TransportShape
  /** Ids of `count` (at most 4) fresh worker endpoints reachable through `transport`. */
  readonly workers: (count: number) => Promise<ReadonlyArray<string>>
  /** Batches and stops that reached worker `workerId`, in arrival order. */
  readonly received: (workerId: string) => Promise<Received>
  /** Outcomes that reached their owners, in arrival order. */
  readonly outcomes: () => Promise<ReadonlyArray<DeliveredOutcome>>
  /** Registers an owner for `instanceId`, where a transport keeps owners per instance; then it records outcomes. */
  readonly addOwner?: (instanceId: string) => Promise<void>
  /** Makes the owner of `instanceId` fail to take its outcome (it throws, or answers an error). */
  readonly refuseOutcomes?: (instanceId: string) => Promise<void>
  /** Makes a worker go away as a crashed process would. */
  readonly removeWorker?: (workerId: string) => Promise<void>
  /** Ends the transport and everything the fixture started; may be called twice. */
  readonly close: () => Promise<void>
  readonly link?: LinkFixture
}

/** Every case of the suite, by key (for `knownGaps`). */
export const TRANSPORT_CASES = [
  "batch-whole",
  "binary-bodies",
  "large-bodies",
  "full-batch",
  "many-workers",
  "no-duplicates",
  "receipt",
  "unknown-worker",
  "worker-gone",
  "refusal",
  "too-large",
  "stop",
  "stop-unknown",
  "outcome",
  "outcome-refused",
  "after-close",
  "link-heartbeat",
  "link-report",
  "link-map",
  "link-map-refused",
  "link-context",
  "link-results",
  "link-pull",
  "link-unknown-instance"
] as const
export type TransportCase = (typeof TRANSPORT_CASES)[number]

export interface TransportConformanceOptions {
  /** Cases the transport does not meet yet, each with the reason: they run as `it.fails`. */
  readonly knownGaps?: Partial<Record<TransportCase, string>>
  /** Cases that do not apply to the transport, each with why: they are skipped. */
  readonly skip?: Partial<Record<TransportCase, string>>
  /** The largest message the receiver takes, if it has a limit: a larger batch must fail "too-large". */
  readonly maxMessageBytes?: number
  /** Milliseconds a call may take before the suite calls it a hang. Default 10 s. */
  readonly callTimeoutMs?: number
}

// ---------------------------------------------------------------------------------------------------------
// The far ends.

export interface ConformanceWorker extends WorkerHandle {
  readonly received: () => Received
}

/**
 * A worker endpoint that records what it is given and takes batches as core's runtime does: one without
 * params for an instance it holds no params of is refused, and nothing is taken of it.
 */
export const conformanceWorker = (id: string): ConformanceWorker => {
  const batches: TaskBatch[] = []
  const stops: StopMessage[] = []
  const params = new Set<string>()
  return {
    id,
    join: () => Effect.void,
    deliver: (batch) => {
      if (batch.params === undefined && !params.has(batch.instanceId)) {
        return new RejectedError({
          reason: "bad-input",
          message: `worker ${id} has no params of ${batch.instanceId}: send them with the batch`
        })
      }
      if (batch.params !== undefined) params.add(batch.instanceId)
      batches.push(batch)
      return undefined
    },
    stop: (message) => void stops.push(message),
    stats: () => ({ running: 0, queued: batches.reduce((sum, batch) => sum + batch.tasks.length, 0), completed: 0 }),
    received: () => ({ batches: [...batches], stops: [...stops] })
  }
}

export type TrackerCall =
  | { readonly call: "heartbeat"; readonly message: Heartbeat }
  | { readonly call: "report"; readonly message: ReportBatch }
  | { readonly call: "map"; readonly message: MapRequest }
  | { readonly call: "appendContext"; readonly message: ContextAppend }
  | { readonly call: "readResults"; readonly message: { run: number; afterSeq: number; limit: number } }
  | { readonly call: "pull"; readonly message: PullRequest }

export interface ConformanceTracker extends Tracker {
  readonly calls: ReadonlyArray<TrackerCall>
}

/** Results a conformanceTracker holds for run 0: text with every kind of character, a failure, a cut result. */
export const conformanceResults: ReadonlyArray<StoredResult> = [
  { id: "0", seq: 0, name: "ROOT", status: TaskStatus.Succeeded, result: '"root"', resultCut: false, lastError: null },
  {
    id: "0.1",
    seq: 1,
    name: "wörk 😀",
    status: TaskStatus.Succeeded,
    result: JSON.stringify({ text: "é😀中\u0000\n", n: -0.5 }),
    resultCut: false,
    lastError: null
  },
  { id: "0.2", seq: 2, name: "work", status: TaskStatus.Failed, result: null, resultCut: false, lastError: "boom ✗" },
  { id: "0.3", seq: 3, name: "work", status: TaskStatus.Succeeded, result: '"x"', resultCut: true, lastError: null }
]

/** A task id a conformanceTracker does not know: reports for it are rejected "unknown-task". */
const UNKNOWN_TASK = "0.404"
/** A run whose results a conformanceTracker cannot read: its store is "unavailable". */
const BROKEN_RUN = 7

const pulledBatch = (instanceId: string): TaskBatch => ({
  instanceId,
  job: CONFORMANCE_JOB,
  params: '{"pulled":true}',
  seq: 41,
  context: { "clé 😀": ["v", 1, null] },
  tasks: [
    { id: "0.7", name: "pulled ✓", kind: TaskKind.Sub, body: '"é😀"', attempt: 2 },
    { id: "0.8", name: "pulled", kind: TaskKind.Sub, body: new Uint8Array([0, 255, 7]), attempt: 0 }
  ]
})

/**
 * A tracker that records every call and answers each in a fixed way: heartbeats with pull mode, reports
 * with the count applied and the UNKNOWN_TASK ones rejected, maps with the number of bodies (a map named
 * ROOT is refused "reserved-name"), context appends with true (false if an entry is named "too-much"),
 * results from conformanceResults (run BROKEN_RUN fails with a StoreError), the first pull with a batch and
 * later ones with null.
 */
export const conformanceTracker = (instanceId: string): ConformanceTracker => {
  const calls: TrackerCall[] = []
  let pulls = 0
  return {
    instanceId,
    calls,
    heartbeat: (message) =>
      Effect.sync((): HeartbeatReply => {
        calls.push({ call: "heartbeat", message })
        return { dispatchMode: "pull" }
      }),
    report: (message) =>
      Effect.sync((): ReportsReply => {
        calls.push({ call: "report", message })
        const rejected = message.reports.filter((report) => report.taskId === UNKNOWN_TASK)
        return {
          applied: message.reports.length - rejected.length,
          dropped: 0,
          unknown: [],
          rejected: rejected.map((report) => ({
            taskId: report.taskId,
            error: new RejectedError({ reason: "unknown-task", message: `no task ${report.taskId} in ${instanceId}` })
          }))
        }
      }),
    map: (message) =>
      Effect.suspend(() => {
        calls.push({ call: "map", message })
        return message.name === "ROOT"
          ? Effect.fail(new RejectedError({ reason: "reserved-name", message: "ROOT is a reserved name" }))
          : Effect.succeed(message.bodies.length)
      }),
    appendContext: (message) =>
      Effect.sync(() => {
        calls.push({ call: "appendContext", message })
        return !Object.hasOwn(message.entries, "too-much")
      }),
    readResults: (run, afterSeq, limit) =>
      Effect.suspend(() => {
        calls.push({ call: "readResults", message: { run, afterSeq, limit } })
        if (run === BROKEN_RUN)
          return Effect.fail(new StoreError({ reason: "unavailable", message: "the disk is gone" }))
        const page = run === 0 ? conformanceResults.filter((result) => result.seq > afterSeq).slice(0, limit) : []
        return Effect.succeed(page)
      }),
    pull: (message) =>
      Effect.sync(() => {
        calls.push({ call: "pull", message })
        return pulls++ === 0 ? pulledBatch(instanceId) : null
      }),
    kill: () => Effect.void,
    // The workers that heartbeated: over HTTP only those read results (R-WIRE-4).
    progress: Effect.sync(() => ({
      instanceId,
      at: 0,
      byName: {},
      byWorker: Object.fromEntries(
        calls.flatMap((entry) =>
          entry.call === "heartbeat"
            ? [[entry.message.workerId, { assigned: 0, running: 0, succeeded: 0, failed: 0 }] as const]
            : []
        )
      ),
      outcome: null
    })),
    onProgress: () => () => undefined,
    outcome: Effect.never,
    released: Effect.never,
    tick: Effect.void,
    workerGone: () => Effect.void
  }
}

// ---------------------------------------------------------------------------------------------------------
// Messages the suite sends.

/** The instance every batch of the suite belongs to. */
export const CONFORMANCE_INSTANCE = "conformance-é😀"
const INSTANCE = CONFORMANCE_INSTANCE
/** Instances whose outcomes the suite delivers. */
const OWNED = [INSTANCE, "other-instance"]

/** Text bodies with every kind of character: JSON text as the tracker sends it, and raw text a transport must carry. */
const textBodies: ReadonlyArray<string> = [
  '"plain"',
  "",
  JSON.stringify("é中文한국어العربية😀👩‍👩‍👧‍👦 e\u0301"),
  JSON.stringify({ nested: [1, { "k é": null }], quote: '"\\', lone: "\ud800" }),
  "\u0000\u0001\u001f\u007f\r\n\t raw control characters",
  '{"$bytes":"AAEC"}',
  "\ud83d\ude00\u2028\u2029\ufeff\uffff"
]

const task = (n: number, body: DispatchedTask["body"], overrides: Partial<DispatchedTask> = {}): DispatchedTask => ({
  id: `0.${n}`,
  name: n % 2 === 0 ? "work" : "wörk 😀",
  kind: TaskKind.Sub,
  body,
  attempt: n % 3,
  ...overrides
})

const batchOf = (seq: number, tasks: ReadonlyArray<DispatchedTask>, parts: Partial<TaskBatch> = {}): TaskBatch => ({
  instanceId: INSTANCE,
  job: CONFORMANCE_JOB,
  params: JSON.stringify({ seq, text: "pärams 😀" }),
  maxResultBytes: 1_048_576,
  seq,
  context: { "clé 😀": { deep: [1, "two", null, true] }, empty: {} },
  tasks,
  ...parts
})

/** A batch without params: taken by a worker that has them, refused by one that does not. */
const withoutParams = (batch: TaskBatch): TaskBatch => {
  const { params: _params, ...rest } = batch
  return rest
}

const outcome = (n: number): Outcome => ({
  ok: n % 2 === 0,
  result: `résultat ${n} 😀\u0000`,
  finishedAt: 1_700_000_000_000 + n,
  counts: { created: 3, succeeded: 2, failed: 1 },
  errors: [
    {
      taskId: "0.2",
      name: "wörk",
      attempt: 1,
      error: { tag: "Error", message: "boom ✗", cause: { tag: "TypeError", message: "inner" } }
    }
  ]
})

const utf8Length = (text: string) => new TextEncoder().encode(text).length

// ---------------------------------------------------------------------------------------------------------
// Checks.

type Settled<A> =
  | { readonly kind: "success"; readonly value: A }
  | { readonly kind: "failure"; readonly error: unknown }
  | { readonly kind: "defect"; readonly cause: string }
  | { readonly kind: "hang" }

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls `read` until `done` holds or `ms` passed; returns the last value read. */
const eventually = async <A>(read: () => Promise<A>, done: (value: A) => boolean, ms = 5_000): Promise<A> => {
  const until = Date.now() + ms
  for (;;) {
    const value = await read()
    if (done(value) || Date.now() > until) return value
    await sleep(10)
  }
}

/** How long the suite waits for a second copy of a message that must not come. */
const SETTLE_MS = 150

export const transportConformance = (
  name: string,
  makeFixture: () => TransportFixture | Promise<TransportFixture>,
  options: TransportConformanceOptions = {}
): void => {
  const callTimeout = options.callTimeoutMs ?? 10_000

  const settle = async <A, E>(effect: Effect.Effect<A, E>): Promise<Settled<A>> => {
    const exit = await Effect.runPromise(effect.pipe(Effect.timeoutOption(callTimeout), Effect.exit))
    if (Exit.isSuccess(exit)) {
      return exit.value._tag === "None" ? { kind: "hang" } : { kind: "success", value: exit.value.value }
    }
    const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
    return failure?._tag === "Fail"
      ? { kind: "failure", error: failure.error }
      : { kind: "defect", cause: String(exit.cause) }
  }

  /** Runs a call that must succeed, and gives its value. */
  const ok = async <A, E>(effect: Effect.Effect<A, E>): Promise<A> => {
    const settled = await settle(effect)
    expect(settled, "the call succeeds").toMatchObject({ kind: "success" })
    return (settled as { value: A }).value
  }

  /** Runs a call that must fail with a typed error (no hang, no defect), and gives the error. */
  const fails = async <A, E>(effect: Effect.Effect<A, E>): Promise<E> => {
    const settled = await settle(effect)
    expect(settled, "the call fails with a typed error").toMatchObject({ kind: "failure" })
    return (settled as { error: E }).error
  }

  const expectTransportError = (error: unknown, reasons: ReadonlyArray<TransportError["reason"]>) => {
    expect(error).toBeInstanceOf(TransportError)
    expect(reasons).toContain((error as TransportError).reason)
    expect((error as TransportError).message.length).toBeGreaterThan(0)
  }

  type Body = (fixture: TransportFixture, skip: (note: string) => void) => Promise<void>

  const withFixture =
    (body: Body) =>
    async ({ skip }: { skip: (note?: string) => void }) => {
      const fixture = await makeFixture()
      try {
        for (const instanceId of OWNED) await fixture.addOwner?.(instanceId)
        await body(fixture, (note) => skip(note))
      } finally {
        await fixture.close()
      }
    }

  /** Registers a case; a known gap runs as `it.fails`, marked in its name. */
  const check = (key: TransportCase, title: string, body: Body) => {
    const gap = options.knownGaps?.[key]
    const skipped = options.skip?.[key]
    if (skipped !== undefined) it.skip(`${title} [does not apply: ${skipped}]`, withFixture(body))
    else if (gap === undefined) it(title, withFixture(body))
    // The reason stays in the runner: runtimes name files after tests (Chromium's failure screenshots).
    else it.fails(`${title} [known gap]`, withFixture(body))
  }

  /** A case that needs part of a fixture: skipped (with a note) where the transport has no such part. */
  const checkIf = (
    key: TransportCase,
    title: string,
    has: (fixture: TransportFixture) => boolean,
    body: (fixture: TransportFixture) => Promise<void>
  ) =>
    check(key, title, async (fixture, skip) => {
      if (!has(fixture)) return skip(`${name} has no part "${key}" needs`)
      await body(fixture)
    })

  /** Waits until `workerId` received `count` batches, then a little more for copies that must not come. */
  const arrived = async (fixture: TransportFixture, workerId: string, count: number): Promise<Received> => {
    await eventually(
      () => fixture.received(workerId),
      (received) => received.batches.length >= count
    )
    await sleep(SETTLE_MS)
    return fixture.received(workerId)
  }

  const expectSameBodies = (received: TaskBatch, sent: TaskBatch) => {
    expect(received.tasks.map((task) => typeof task.body)).toEqual(sent.tasks.map((task) => typeof task.body))
    received.tasks.forEach((task, i) => {
      const body = sent.tasks[i]!.body
      if (typeof body === "string") expect(task.body).toBe(body)
      else {
        expect(task.body).toBeInstanceOf(Uint8Array)
        expect([...(task.body as Uint8Array)]).toEqual([...body])
      }
    })
  }

  describe(`Transport conformance: ${name}`, () => {
    check(
      "batch-whole",
      "R-DISP-1 a batch arrives whole: every field of the batch and of its tasks as sent, text bodies included",
      async (fixture) => {
        const [worker] = await fixture.workers(1)
        const sent = batchOf(
          0,
          textBodies.map((body, i) => task(i + 1, body, i === 0 ? { id: "0", name: "ROOT", kind: TaskKind.Root } : {}))
        )
        await ok(fixture.transport.send(worker!, sent))
        const received = await arrived(fixture, worker!, 1)
        expect(received.batches).toHaveLength(1)
        expect(received.batches[0]).toEqual(sent)
        expectSameBodies(received.batches[0]!, sent)
        expect(received.stops).toEqual([])
      }
    )

    check(
      "binary-bodies",
      "R-DISP-1 byte bodies arrive as bytes, byte for byte, and the sender's bytes stay whole",
      async (fixture) => {
        const [worker] = await fixture.workers(1)
        const all = new Uint8Array(256).map((_, i) => i)
        const bodies = [all, new Uint8Array(0), new Uint8Array([0]), new Uint8Array(70_000).fill(0xff), all.slice(250)]
        const sent = batchOf(
          3,
          bodies.map((body, i) => task(i + 1, body))
        )
        await ok(fixture.transport.send(worker!, sent))
        const received = await arrived(fixture, worker!, 1)
        expect(received.batches).toHaveLength(1)
        expectSameBodies(received.batches[0]!, sent)
        expect(received.batches[0]).toEqual(sent)
        // The tracker may send the same task again: its bytes were not moved away by the send.
        expect(bodies.map((body) => body.byteLength)).toEqual([256, 0, 1, 70_000, 6])
        expect([...all]).toEqual(Array.from({ length: 256 }, (_, i) => i))
      }
    )

    check(
      "large-bodies",
      "R-MAP-3 bodies as large as maxTaskBodyBytes (64 KiB), many to a batch, arrive whole",
      async (fixture) => {
        const [worker] = await fixture.workers(1)
        const unit = "é😀中a" // 10 bytes of UTF-8
        const big = JSON.stringify(unit.repeat(6_553))
        expect(utf8Length(big)).toBeLessThanOrEqual(64 * 1024)
        const limit = options.maxMessageBytes ?? Number.POSITIVE_INFINITY
        const count = Math.max(1, Math.min(16, Math.floor((limit * 0.8) / (2 * utf8Length(big)))))
        const sent = batchOf(
          4,
          Array.from({ length: count }, (_, i) => task(i + 1, `${big.slice(0, -1)}${i}"`))
        )
        await ok(fixture.transport.send(worker!, sent))
        const received = await arrived(fixture, worker!, 1)
        expect(received.batches).toHaveLength(1)
        expectSameBodies(received.batches[0]!, sent)
        expect(received.batches[0]).toEqual(sent)
      }
    )

    check(
      "full-batch",
      "R-DISP-1 a batch of dispatchBatchSize (256) tasks arrives with its tasks in order",
      async (fixture) => {
        const [worker] = await fixture.workers(1)
        const sent = batchOf(
          5,
          Array.from({ length: 256 }, (_, i) => task(i + 1, JSON.stringify({ i, s: "😀".repeat(i % 7) })))
        )
        await ok(fixture.transport.send(worker!, sent))
        const received = await arrived(fixture, worker!, 1)
        expect(received.batches[0]?.tasks.map((task) => task.id)).toEqual(sent.tasks.map((task) => task.id))
        expect(received.batches[0]).toEqual(sent)
      }
    )

    check(
      "many-workers",
      "R-DISP-3 batches to many workers, sent at once, arrive each at its own worker in the order sent",
      async (fixture) => {
        const workers = await fixture.workers(4)
        expect(new Set(workers).size).toBe(4)
        const perWorker = 6
        const plan = workers.map((worker, w) =>
          Array.from({ length: perWorker }, (_, b) => {
            const seq = w * perWorker + b
            const sent = batchOf(seq, [task(seq * 2 + 1, JSON.stringify(`${worker} ${b}`)), task(seq * 2 + 2, "")])
            // Params go with a worker's first batch only, as the tracker sends them.
            return b === 0 ? sent : withoutParams(sent)
          })
        )
        await ok(
          Effect.forEach(
            workers,
            (worker, w) =>
              Effect.forEach(plan[w]!, (batch) => fixture.transport.send(worker, batch), { discard: true }),
            { concurrency: "unbounded", discard: true }
          )
        )
        for (const [w, worker] of workers.entries()) {
          const received = await arrived(fixture, worker, perWorker)
          expect(received.batches.map((batch) => batch.seq)).toEqual(plan[w]!.map((batch) => batch.seq))
          expect(received.batches).toEqual(plan[w])
        }
      }
    )

    check(
      "no-duplicates",
      "R-REC-2 nothing is delivered twice by the transport: concurrent sends to one worker arrive once each",
      async (fixture) => {
        const [worker] = await fixture.workers(1)
        await ok(fixture.transport.send(worker!, batchOf(100, [task(1, '"first"')])))
        const sent = Array.from({ length: 24 }, (_, i) => withoutParams(batchOf(101 + i, [task(i + 2, `${i}`)])))
        await ok(
          Effect.forEach(sent, (batch) => fixture.transport.send(worker!, batch), {
            concurrency: "unbounded",
            discard: true
          })
        )
        const received = await arrived(fixture, worker!, 25)
        const seqs = received.batches.map((batch) => batch.seq)
        expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => 100 + i))
        await ok(fixture.transport.stop(worker!, { instanceId: INSTANCE, taskIds: ["0.1"], reason: "once" }))
        await sleep(SETTLE_MS)
        expect((await fixture.received(worker!)).stops).toHaveLength(1)
        const outcomes = (await fixture.outcomes()).length
        await ok(fixture.transport.deliverOutcome(INSTANCE, outcome(1)))
        await sleep(SETTLE_MS)
        expect(await fixture.outcomes()).toHaveLength(outcomes + 1)
      }
    )

    check(
      "receipt",
      "R-DISP-10 a send succeeds only once the worker has taken the batch: its answer is the receipt",
      async (fixture) => {
        const [worker] = await fixture.workers(1)
        for (let seq = 0; seq < 5; seq++) {
          const sent = batchOf(seq, [task(seq + 1, '"r"')])
          await ok(fixture.transport.send(worker!, seq === 0 ? sent : withoutParams(sent)))
          expect((await fixture.received(worker!)).batches.map((batch) => batch.seq)).toContain(seq)
        }
      }
    )

    check(
      "unknown-worker",
      "R-DISP-7 a send to a worker the transport never knew fails at once with TransportError, not a hang",
      async (fixture) => {
        await fixture.workers(1)
        const error = await fails(fixture.transport.send("nobody-ø", batchOf(0, [task(1, '"x"')])))
        expectTransportError(error, ["unreachable", "rejected", "closed"])
      }
    )

    checkIf(
      "worker-gone",
      "R-DISP-7 R-WORK-2 a send to a worker that went away fails with TransportError, not a hang",
      (fixture) => fixture.removeWorker !== undefined,
      async (fixture) => {
        const [worker, other] = await fixture.workers(2)
        await ok(fixture.transport.send(worker!, batchOf(0, [task(1, '"before"')])))
        await arrived(fixture, worker!, 1)
        await fixture.removeWorker!(worker!)
        const error = await fails(fixture.transport.send(worker!, withoutParams(batchOf(1, [task(2, '"after"')]))))
        expectTransportError(error, ["unreachable", "closed", "timeout"])
        // The others are not touched.
        await ok(fixture.transport.send(other!, batchOf(2, [task(3, '"other"')])))
        expect((await arrived(fixture, other!, 1)).batches.map((batch) => batch.seq)).toEqual([2])
      }
    )

    check(
      "refusal",
      'R-DISP-10 R-DISP-7 a batch the worker refuses fails the send with TransportError "rejected" and its message',
      async (fixture) => {
        const [worker] = await fixture.workers(1)
        const refused = withoutParams(batchOf(0, [task(1, '"no params"')]))
        const error = await fails(fixture.transport.send(worker!, refused))
        expectTransportError(error, ["rejected"])
        expect((error as TransportError).message).toContain("params")
        // The worker is still there: the same tasks with the params are taken.
        await ok(fixture.transport.send(worker!, batchOf(1, [task(1, '"with params"')])))
        const received = await arrived(fixture, worker!, 1)
        expect(received.batches.map((batch) => batch.seq)).toContain(1)
      }
    )

    checkIf(
      "too-large",
      'R-DISP-10 a batch larger than the receiver takes fails with TransportError "too-large", so it can be split',
      () => options.maxMessageBytes !== undefined,
      async (fixture) => {
        const [worker] = await fixture.workers(1)
        const limit = options.maxMessageBytes!
        const body = JSON.stringify("x".repeat(60 * 1024))
        const count = Math.ceil((limit * 1.25) / body.length) + 1
        const sent = batchOf(
          0,
          Array.from({ length: count }, (_, i) => task(i + 1, body))
        )
        const error = await fails(fixture.transport.send(worker!, sent))
        expectTransportError(error, ["too-large"])
        // Half of it would pass.
        const half = batchOf(1, sent.tasks.slice(0, Math.floor((limit * 0.4) / body.length)))
        await ok(fixture.transport.send(worker!, half))
      }
    )

    check(
      "stop",
      "R-FIN-7 R-FIN-5 a stop reaches its worker with its message whole: some tasks, or the whole instance",
      async (fixture) => {
        const [worker, other] = await fixture.workers(2)
        await ok(fixture.transport.send(worker!, batchOf(0, [task(1, '"a"'), task(2, '"b"')])))
        await ok(fixture.transport.send(other!, batchOf(1, [task(3, '"c"')])))
        await arrived(fixture, worker!, 1)
        const some: StopMessage = { instanceId: INSTANCE, taskIds: ["0.1"], reason: "killed: by the öperator 😀" }
        const all: StopMessage = { instanceId: INSTANCE, taskIds: null, reason: "timed out" }
        await ok(fixture.transport.stop(worker!, some))
        await ok(fixture.transport.stop(worker!, all))
        const received = await eventually(
          () => fixture.received(worker!),
          (received) => received.stops.length >= 2
        )
        expect(received.stops).toEqual([some, all])
        await sleep(SETTLE_MS)
        expect((await fixture.received(other!)).stops).toEqual([])
      }
    )

    check(
      "stop-unknown",
      "a stop to a worker the transport never knew answers (TransportError or nothing to stop): no hang, no defect",
      async (fixture) => {
        await fixture.workers(1)
        const settled = await settle(
          fixture.transport.stop("nobody-ø", { instanceId: INSTANCE, taskIds: null, reason: "x" })
        )
        expect(["success", "failure"]).toContain(settled.kind)
        if (settled.kind === "failure") expectTransportError(settled.error, ["unreachable", "rejected", "closed"])
      }
    )

    check(
      "outcome",
      "R-FIN-6 deliverOutcome reaches the owner with the outcome whole, once per delivery, re-sends alike",
      async (fixture) => {
        const before = (await fixture.outcomes()).length
        await ok(fixture.transport.deliverOutcome(INSTANCE, outcome(2)))
        await ok(fixture.transport.deliverOutcome("other-instance", outcome(3)))
        await ok(fixture.transport.deliverOutcome(INSTANCE, outcome(2)))
        const delivered = (
          await eventually(
            () => fixture.outcomes(),
            (all) => all.length >= before + 3
          )
        ).slice(before)
        expect(delivered).toEqual([
          { instanceId: INSTANCE, outcome: outcome(2) },
          { instanceId: "other-instance", outcome: outcome(3) },
          { instanceId: INSTANCE, outcome: outcome(2) }
        ])
      }
    )

    checkIf(
      "outcome-refused",
      "R-FIN-6 an owner that does not take the outcome fails deliverOutcome with TransportError, so it is sent again",
      (fixture) => fixture.refuseOutcomes !== undefined,
      async (fixture) => {
        await fixture.refuseOutcomes!("refusing-owner")
        const error = await fails(fixture.transport.deliverOutcome("refusing-owner", outcome(4)))
        expectTransportError(error, ["rejected", "unreachable"])
        await ok(fixture.transport.deliverOutcome(INSTANCE, outcome(5)))
      }
    )

    check("after-close", "a send, a stop after close fail with TransportError: no hang, no defect", async (fixture) => {
      const [worker] = await fixture.workers(1)
      await ok(fixture.transport.send(worker!, batchOf(0, [task(1, '"before"')])))
      await fixture.close()
      const error = await fails(fixture.transport.send(worker!, withoutParams(batchOf(1, [task(2, '"after"')]))))
      expectTransportError(error, ["closed", "unreachable"])
      const stopped = await settle(
        fixture.transport.stop(worker!, { instanceId: INSTANCE, taskIds: null, reason: "x" })
      )
      expect(["success", "failure"]).toContain(stopped.kind)
      if (stopped.kind === "failure") expectTransportError(stopped.error, ["closed", "unreachable"])
    })

    // -------------------------------------------------------------------------------------------------------
    // The worker → tracker link.

    const hasLink = (fixture: TransportFixture) => fixture.link !== undefined

    /** A worker, a conformanceTracker behind the link, and the worker's link to it. */
    const linked = async (fixture: TransportFixture) => {
      const [worker] = await fixture.workers(1)
      const tracker = conformanceTracker(INSTANCE)
      await fixture.link!.addTracker(tracker)
      return { worker: worker!, tracker, link: fixture.link!.connect(worker!, INSTANCE) }
    }

    const expectRejected = (error: unknown, reason: RejectedError["reason"]) => {
      expect(error).toBeInstanceOf(RejectedError)
      expect((error as RejectedError).reason).toBe(reason)
    }

    checkIf(
      "link-heartbeat",
      "R-WORK-1 R-DISP-9 a heartbeat reaches the tracker whole; a link that pulls brings the dispatch mode back",
      hasLink,
      async (fixture) => {
        const { worker, tracker, link } = await linked(fixture)
        const heartbeat: Heartbeat = {
          instanceId: INSTANCE,
          workerId: worker,
          slots: 8,
          freeSlots: 3,
          queueLength: 2,
          idle: false,
          incarnation: "inc-1",
          seen: 4,
          firstSeen: -1,
          n: 9
        }
        const reply = await ok(link.heartbeat(heartbeat))
        expect(tracker.calls).toEqual([{ call: "heartbeat", message: heartbeat }])
        // A link without pull is push-only: it may answer nothing (push).
        if (link.pull !== undefined) expect(reply).toEqual({ dispatchMode: "pull" })
        else expect([undefined, { dispatchMode: "pull" }]).toContainEqual(reply)
      }
    )

    checkIf(
      "link-report",
      "R-STATE-4 R-RETRY-5 a report batch reaches the tracker whole; its reply comes back with typed rejections",
      hasLink,
      async (fixture) => {
        const { worker, tracker, link } = await linked(fixture)
        const batch: ReportBatch = {
          instanceId: INSTANCE,
          workerId: worker,
          n: 3,
          reports: [
            { taskId: "0.1", attempt: 0, status: TaskStatus.Received },
            { taskId: "0.2", attempt: 1, status: TaskStatus.Succeeded, result: JSON.stringify({ t: "é😀\u0000" }) },
            {
              taskId: "0.3",
              attempt: 2,
              status: TaskStatus.Failed,
              error: { tag: "RangeError", message: "too far ✗", cause: { tag: "Error", message: "inner" } }
            },
            { taskId: "0.5", attempt: 0, status: TaskStatus.Failed, error: "plain text 😀" },
            { taskId: UNKNOWN_TASK, attempt: 0, status: TaskStatus.Succeeded, result: "1" }
          ]
        }
        const reply = await ok(link.report(batch))
        expect(tracker.calls).toEqual([{ call: "report", message: batch }])
        expect(reply.applied).toBe(4)
        expect(reply.dropped).toBe(0)
        expect(reply.rejected).toHaveLength(1)
        expect(reply.rejected[0]?.taskId).toBe(UNKNOWN_TASK)
        expectRejected(reply.rejected[0]?.error, "unknown-task")
      }
    )

    checkIf(
      "link-map",
      "R-MAP-1 R-MAP-6 a map call reaches the tracker with its bodies whole (text and bytes); the count comes back",
      hasLink,
      async (fixture) => {
        const { worker, tracker, link } = await linked(fixture)
        const bytes = new Uint8Array([0, 1, 128, 255])
        const request: MapRequest = {
          instanceId: INSTANCE,
          workerId: worker,
          taskId: "0",
          attempt: 1,
          name: "chïld 😀",
          from: 12,
          bodies: [...textBodies, bytes, new Uint8Array(0), JSON.stringify("é".repeat(30_000))]
        }
        expect(await ok(link.map(request))).toBe(request.bodies.length)
        expect(tracker.calls).toHaveLength(1)
        const seen = tracker.calls[0]!.message as MapRequest
        expect(seen).toEqual(request)
        expect(seen.bodies.map((body) => typeof body)).toEqual(request.bodies.map((body) => typeof body))
        expect([...(seen.bodies[textBodies.length] as Uint8Array)]).toEqual([0, 1, 128, 255])
        expect([...bytes]).toEqual([0, 1, 128, 255])
      }
    )

    checkIf(
      "link-map-refused",
      "R-MAP-3 R-MAP-6 a map call the tracker refuses fails with RejectedError and the tracker's reason",
      hasLink,
      async (fixture) => {
        const { worker, link } = await linked(fixture)
        const error = await fails(
          link.map({ instanceId: INSTANCE, workerId: worker, taskId: "0", attempt: 0, name: "ROOT", bodies: ["1"] })
        )
        expectRejected(error, "reserved-name")
      }
    )

    checkIf(
      "link-context",
      "R-CTX-1 a context append reaches the tracker whole; its answer comes back",
      hasLink,
      async (fixture) => {
        const { worker, tracker, link } = await linked(fixture)
        const request: ContextAppend = {
          instanceId: INSTANCE,
          workerId: worker,
          taskId: "0.1",
          attempt: 0,
          entries: { "clé 😀": { a: [1, null, "ü"] }, n: -1.5 }
        }
        expect(await ok(link.appendContext(request))).toBe(true)
        const refused = { ...request, entries: { "too-much": "x" } }
        expect(await ok(link.appendContext(refused))).toBe(false)
        expect(tracker.calls).toEqual([
          { call: "appendContext", message: request },
          { call: "appendContext", message: refused }
        ])
      }
    )

    checkIf(
      "link-results",
      "R-FIN-3 result pages come back whole and in order; a StoreError of the tracker comes back as a StoreError",
      hasLink,
      async (fixture) => {
        const { worker, link } = await linked(fixture)
        // A worker of the instance reads its results (R-WIRE-4): it joins first.
        const joining = { instanceId: INSTANCE, workerId: worker, slots: 1, freeSlots: 1, queueLength: 0, idle: false }
        await ok(link.heartbeat(joining))
        expect(await ok(link.readResults(0, -1, 1_000))).toEqual(conformanceResults)
        expect(await ok(link.readResults(0, 0, 2))).toEqual(conformanceResults.slice(1, 3))
        expect(await ok(link.readResults(1, -1, 10))).toEqual([])
        const error = await fails(link.readResults(BROKEN_RUN, -1, 10))
        expect(error).toBeInstanceOf(StoreError)
      }
    )

    check(
      "link-pull",
      "R-DISP-9 a pull reaches the tracker; its batch comes back whole (text and byte bodies), then null",
      async (fixture, skip) => {
        if (fixture.link === undefined) return skip(`${name} has no link`)
        const { worker, tracker, link } = await linked(fixture)
        if (link.pull === undefined) return skip(`the link of ${name} does not pull (push only)`)
        const request: PullRequest = { instanceId: INSTANCE, workerId: worker, pageSize: 5 }
        const batch = await ok(link.pull(request))
        expect(batch).toEqual(pulledBatch(INSTANCE))
        expectSameBodies(batch!, pulledBatch(INSTANCE))
        expect(await ok(link.pull(request))).toBeNull()
        expect(tracker.calls).toEqual([
          { call: "pull", message: request },
          { call: "pull", message: request }
        ])
      }
    )

    checkIf(
      "link-unknown-instance",
      "R-STATE-4 a call for an instance the far side does not hold fails typed: no hang, no defect",
      hasLink,
      async (fixture) => {
        const { worker } = await linked(fixture)
        const link = fixture.link!.connect(worker, "nobody-here")
        const error = await fails(
          link.heartbeat({
            instanceId: "nobody-here",
            workerId: worker,
            slots: 1,
            freeSlots: 1,
            queueLength: 0,
            idle: true
          })
        )
        const typed = error as LinkError
        expect(
          (typed instanceof RejectedError && typed.reason === "unknown-instance") ||
            (typed instanceof TransportError && typed.reason === "unreachable")
        ).toBe(true)
      }
    )
  })
}
