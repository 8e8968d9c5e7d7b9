/**
 * Runs one simulated scenario: the real tracker (startTracker / resumeTracker), real worker runtimes and a
 * fault network, all under one TestClock, so tens of simulated minutes take milliseconds. The harness moves
 * the clock in steps, applies the scenario's events (worker crashes and joins, tracker restarts on the same
 * memory store), calls the network calm when the fault phase ends, and stops once the owner has the outcome
 * and the tracker let go of the instance, or when the bound after calm is over.
 */
import { Clock, Effect, Exit, References, Scope } from "effect"
import { TestClock } from "effect/testing"
import {
  RejectedError,
  resolveConfig,
  StoreError,
  type JobConfig,
  type JobConfigOverrides,
  type Outcome,
  type Progress
} from "../../src/index.ts"
import {
  makeMemoryStore,
  resumeTracker,
  startTracker,
  TaskStore,
  Transport,
  startWorker,
  type TaskStoreShape,
  type Tracker,
  type WorkerHandle
} from "../../src/adapter.ts"
import { makeOnDemandWorker, type OnDemandWorker } from "../../src/host/on-demand-worker.ts"
import { MAX_SLOTS } from "../../src/model/messages.ts"
import { makeFaultNetwork, makeRandom, type FaultPolicy } from "../../src/testing/fault-network.ts"
import { JOB_NAME, newJobLog, simJob, type JobLog, type JobPlan } from "./jobs.ts"

export const INSTANCE = "sim-1"
export const LOCAL = "local"

export type SimEvent =
  | { readonly _tag: "CrashWorker"; readonly pick: number }
  | { readonly _tag: "RestartWorker"; readonly pick: number; readonly downMs: number }
  | { readonly _tag: "AddWorker"; readonly slots: number }
  | { readonly _tag: "RestartTracker"; readonly process: boolean; readonly downMs: number }
  /** A standing worker's runtime dies; `seen`: the transport saw it end and says so (R-WORK-7), else silence. */
  | { readonly _tag: "EndStanding"; readonly pick: number; readonly seen: boolean }

export interface Scenario {
  /** Seeds the network's and the store's faults. */
  readonly seed: number
  readonly job: JobPlan
  readonly config: JobConfigOverrides
  /** Slots of the remote workers there at the start. */
  readonly remotes: ReadonlyArray<number>
  readonly localSlots: number
  /** Slots of the standing workers the tracker is told of (R-WORK-6): started by a send, gone when idle. */
  readonly standing?: ReadonlyArray<number>
  /** Workers that heartbeat, announcing MAX_SLOTS, and never answer a batch sent to them, calm or not (R-WIRE-3). */
  readonly sinks?: number
  readonly policy: FaultPolicy
  /** Chance that a store write (and a results read) fails with StoreError before calm. */
  readonly storeFailRate: number
  /** Simulated milliseconds of faults; then calm (0: no faults at all). */
  readonly faultMs: number
  readonly events: ReadonlyArray<{ readonly at: number; readonly event: SimEvent }>
  /** The clock moves this much between looks. */
  readonly stepMs: number
  /** After calm, the outcome must be there and the tracker released within this (R-DISP-10: no endless cycle). */
  readonly calmBoundMs: number
}

export interface RunReport {
  /** The progress of the tracker at the end, if one holds the instance. */
  readonly progress: Progress | undefined
  /** The stored tasks that are not terminal at the end: id:status:attempt:failures:redeliveries:worker. */
  readonly liveRows: ReadonlyArray<string>
  readonly config: JobConfig
  /** Every outcome the owner was handed, in order. */
  readonly deliveries: ReadonlyArray<Outcome>
  readonly firstDeliveryAt: number | undefined
  readonly calmAt: number
  readonly endedAt: number
  /** The tracker holding the instance let go of it (or none holds it and the store no longer has it). */
  readonly released: boolean
  readonly log: JobLog
  /** What the harness did, with times. */
  readonly trace: ReadonlyArray<string>
  readonly networkStats: ReadonlyMap<string, number>
  /** The longest a heartbeat waited at a tracker for its answer, and when it came in (simulated ms). */
  readonly longestHeartbeatWait: number
  readonly longestHeartbeatWaitAt: number
  readonly storeFailures: number
  /** When a write failed often enough in a row that the tracker gave it up (simulated ms). */
  readonly writesGivenUp: ReadonlyArray<number>
}

interface TrackerSlot {
  readonly tracker: Tracker
  readonly scope: Scope.Closeable
  released: boolean
}

interface WorkerSlot {
  readonly handle: WorkerHandle
  readonly scope: Scope.Closeable
  readonly slots: number
}

type Agenda = Array<{
  at: number
  event:
    | SimEvent
    | { readonly _tag: "Resume"; readonly process: boolean }
    | { readonly _tag: "StartWorker"; readonly id: string; readonly slots: number }
}>

/** Lets what the last clock move woke up run on: promise chains and scheduler turns of the workers. */
const settle = Effect.promise(
  () =>
    new Promise<void>((resolve) => {
      let turns = 2
      const next = () => (--turns <= 0 ? resolve() : setImmediate(next))
      setImmediate(next)
    })
)

/** A tracker whose map calls and reports are written down (SIM_DEBUG). */
const tracedTracker = (tracker: Tracker, debug: (line: string) => void): Tracker => ({
  ...tracker,
  map: (request) => {
    const what =
      `map ${request.taskId}@${request.attempt} from ${request.from} ` +
      `${JSON.stringify(request.bodies)} by ${request.workerId}`
    debug(what)
    return tracker.map(request).pipe(
      Effect.tap((created) => Effect.sync(() => debug(`${what} -> created ${created}`))),
      Effect.tapError((error) => Effect.sync(() => debug(`${what} -> ${error.message}`)))
    )
  },
  report: (batch) => {
    const what =
      `report ${batch.workerId}#${batch.n}: ` +
      batch.reports.map((r) => `${r.taskId}@${r.attempt}=${r.status}`).join(" ")
    debug(what)
    return tracker.report(batch).pipe(
      Effect.tap((reply) =>
        Effect.sync(() =>
          debug(`${what} -> applied ${reply.applied} dropped ${reply.dropped} rejected ${reply.rejected.length}`)
        )
      ),
      Effect.tapError((error) => Effect.sync(() => debug(`${what} -> ${error.message}`)))
    )
  },
  pull: (request) =>
    tracker
      .pull(request)
      .pipe(
        Effect.tap((batch) =>
          Effect.sync(() =>
            debug(
              `pull ${request.workerId} ${request.pageSize} -> ` +
                (batch === null ? "none" : `#${batch.seq} ${batch.tasks.map((t) => `${t.id}@${t.attempt}`).join(" ")}`)
            )
          )
        )
      ),
  heartbeat: (heartbeat) => {
    debug(
      `heartbeat ${heartbeat.workerId}#${heartbeat.n} free ${heartbeat.freeSlots}/${heartbeat.slots} ` +
        `queue ${heartbeat.queueLength} idle ${heartbeat.idle} seen ${heartbeat.seen}`
    )
    return tracker.heartbeat(heartbeat)
  }
})

/** The longest a heartbeat waited at the tracker for its answer (network time not included), and when. */
interface Waits {
  longest: number
  at: number
}

/** A tracker whose heartbeat answers are timed: a tracker busy with something else answers late (R-DISP-10). */
const timedTracker = (tracker: Tracker, at: () => number, waits: Waits): Tracker => ({
  ...tracker,
  heartbeat: (heartbeat) =>
    Effect.suspend(() => {
      const start = at()
      return tracker.heartbeat(heartbeat).pipe(
        Effect.tap(() =>
          Effect.sync(() => {
            const waited = at() - start
            if (waited > waits.longest) {
              waits.longest = waited
              waits.at = start
            }
          })
        )
      )
    })
})

const scenarioRun = (s: Scenario, debug?: (line: string) => void): Effect.Effect<RunReport, never, Scope.Scope> =>
  Effect.gen(function* () {
    const services = yield* Effect.context<never>()
    const runPromise = Effect.runPromiseWith(services)
    const outer = yield* Effect.scope
    const config = yield* Effect.orDie(resolveConfig(s.config))
    const net = yield* makeFaultNetwork({ seed: s.seed, policy: s.policy })
    const clock = yield* Clock.clockWith(Effect.succeed)
    const at = () => clock.currentTimeMillisUnsafe()
    const storeRandom = makeRandom(s.seed ^ 0x5bd1e995)
    const base = makeMemoryStore()
    let storeFailures = 0
    /** Writes failed in a row, and when a run of them was long enough for the tracker to give a write up. */
    let failedInARow = 0
    const writesGivenUp: number[] = []
    const outage = (what: string) => {
      const drawn = storeRandom()
      if (net.isCalm() || drawn >= s.storeFailRate) return undefined
      storeFailures++
      return new StoreError({ reason: "unavailable", message: `simulated store outage (${what})` })
    }
    const store: TaskStoreShape = {
      apply: (batch) =>
        Effect.suspend(() => {
          const failure = outage("apply")
          if (failure === undefined) {
            failedInARow = 0
            return base.apply(batch)
          }
          // The tracker tries a write 4 times (R-RETRY-4).
          if (++failedInARow === 4) writesGivenUp.push(at())
          return failure
        }),
      readTasks: (instanceId, ids) => base.readTasks(instanceId, ids),
      readResults: (instanceId, run, afterSeq, limit) =>
        Effect.suspend(() => outage("readResults") ?? base.readResults(instanceId, run, afterSeq, limit)),
      load: (instanceId) => base.load(instanceId),
      listInstances: () => base.listInstances()
    }
    const log = newJobLog()
    const job = simJob({
      plan: s.job,
      maxResultBytes: config.maxResultBytes,
      log,
      sleep: (ms) => runPromise(Effect.sleep(ms)),
      sleepEffect: (ms) => Effect.provideContext(Effect.sleep(ms), services)
    })
    const trace: string[] = []
    const waits: Waits = { longest: 0, at: 0 }
    const deliveries: Outcome[] = []
    let firstDeliveryAt: number | undefined
    const now = () => Clock.currentTimeMillis
    net.setOwner(INSTANCE, (outcome) => {
      if (firstDeliveryAt === undefined) firstDeliveryAt = at()
      deliveries.push(outcome)
    })

    const provide = <A, E>(effect: Effect.Effect<A, E, TaskStore | Transport | Scope.Scope>, scope: Scope.Closeable) =>
      effect.pipe(
        Effect.provideService(TaskStore, store),
        Effect.provideService(Transport, net.transport),
        Scope.provide(scope)
      )

    let current: TrackerSlot | undefined
    const adopt = (tracker: Tracker, scope: Scope.Closeable) =>
      Effect.gen(function* () {
        const slot: TrackerSlot = { tracker, scope, released: false }
        current = slot
        net.addTracker(
          timedTracker(
            debug === undefined ? tracker : tracedTracker(tracker, (line) => debug(`${at()} ${line}`)),
            at,
            waits
          )
        )
        yield* Effect.forkIn(
          tracker.released.pipe(
            Effect.andThen(
              Effect.sync(() => {
                slot.released = true
                trace.push(`${at()} tracker released`)
              })
            )
          ),
          scope
        )
      })

    const standing = (s.standing ?? []).map((slots, i) => ({ id: `s${i + 1}`, slots }))
    const first = yield* Scope.fork(outer)
    const tracker = yield* provide(
      startTracker({
        instanceId: INSTANCE,
        job: JOB_NAME,
        kind: s.job.kind,
        config,
        params: JSON.stringify({ sim: true }),
        localWorkerId: LOCAL,
        standing
      }),
      first
    )
    yield* adopt(tracker, first)

    const workers = new Map<string, WorkerSlot>()
    let nextWorker = 0
    const startW = (id: string, slots: number) =>
      Effect.gen(function* () {
        const scope = yield* Scope.fork(outer)
        const handle = yield* startWorker({
          id,
          slots,
          jobs: (name) => (name === JOB_NAME ? job : undefined),
          connect: net.link,
          heartbeatInterval: config.heartbeatInterval
        }).pipe(Scope.provide(scope), Effect.orDie)
        net.addWorker(handle)
        workers.set(id, { handle, scope, slots })
        // A join may be held up by the network: it must not hold the clock.
        yield* Effect.forkIn(Effect.ignore(handle.join(INSTANCE)), scope)
        trace.push(`${at()} worker ${id} (${slots} slots) joins`)
      })
    const crashW = (id: string) =>
      Effect.gen(function* () {
        const slot = workers.get(id)
        if (slot === undefined) return
        workers.delete(id)
        net.removeWorker(id)
        yield* Scope.close(slot.scope, Exit.void)
        trace.push(`${at()} worker ${id} crashes`)
      })
    const remoteIds = () => [...workers.keys()].filter((id) => id !== LOCAL).sort()

    // Standing workers as a host runs them: core's on-demand worker, whose runtime a send starts and which stops
    // once it holds nothing; the network reaches it like any worker.
    const onDemand = new Map<string, OnDemandWorker>()
    const startStanding = (id: string, slots: number) => {
      const worker = makeOnDemandWorker({
        id,
        slots,
        jobs: (name) => (name === JOB_NAME ? job : undefined),
        connect: net.link,
        heartbeatInterval: config.heartbeatInterval,
        context: services
      })
      onDemand.set(id, worker)
      net.addWorker({
        id,
        join: () => Effect.void,
        deliver: worker.deliver,
        stop: worker.stop,
        stats: () => ({ running: 0, queued: 0, completed: 0 })
      })
    }
    for (const { id, slots } of standing) startStanding(id, slots)

    for (const slots of s.remotes) yield* startW(`w${++nextWorker}`, slots)
    for (let sink = 1; sink <= (s.sinks ?? 0); sink++) {
      net.sink(`sink${sink}`)
      yield* startW(`sink${sink}`, MAX_SLOTS)
    }
    yield* startW(LOCAL, s.localSlots)

    const agenda: Agenda = s.events.map((entry) => ({ at: entry.at, event: entry.event })).sort((a, b) => a.at - b.at)
    const schedule = (entry: Agenda[number]) => {
      agenda.push(entry)
      agenda.sort((a, b) => a.at - b.at)
    }

    const apply = (event: Agenda[number]["event"]) =>
      Effect.gen(function* () {
        const t = yield* now()
        switch (event._tag) {
          case "CrashWorker":
          case "RestartWorker": {
            const ids = remoteIds()
            if (ids.length === 0) return
            const id = ids[event.pick % ids.length] as string
            const slots = workers.get(id)?.slots ?? 1
            yield* crashW(id)
            if (event._tag === "RestartWorker")
              schedule({ at: t + event.downMs, event: { _tag: "StartWorker", id, slots } })
            return
          }
          case "AddWorker":
            return yield* startW(`w${++nextWorker}`, event.slots)
          case "EndStanding": {
            if (standing.length === 0) return
            const { id, slots } = standing[event.pick % standing.length] as (typeof standing)[number]
            const running = onDemand.get(id)?.running() ?? false
            onDemand.get(id)?.close()
            net.removeWorker(id)
            trace.push(`${t} standing worker ${id} ends${running ? " holding tasks" : ""}${event.seen ? ", seen" : ""}`)
            if (event.seen && current !== undefined) yield* current.tracker.workerGone(id, "its runtime ended")
            // The next send starts a fresh runtime, as a host starts a fresh invocation.
            startStanding(id, slots)
            return
          }
          case "StartWorker":
            if (!workers.has(event.id)) yield* startW(event.id, event.slots)
            return
          case "RestartTracker": {
            // Before the first write is stored there is nothing to resume from (the owner would submit again). A
            // process that restarts resumes whatever its store holds: a released instance whose rows are still
            // there (the write that deletes them failed) is resumed too.
            if (current === undefined || !base.instances.has(INSTANCE)) return
            const slot = current
            current = undefined
            net.crashTracker(INSTANCE)
            yield* Scope.close(slot.scope, Exit.void)
            trace.push(`${t} tracker crashes${event.process ? " with its local worker" : ""}`)
            if (event.process) yield* crashW(LOCAL)
            schedule({ at: t + event.downMs, event: { _tag: "Resume", process: event.process } })
            return
          }
          case "Resume": {
            const scope = yield* Scope.fork(outer)
            const resumed = yield* Effect.result(provide(resumeTracker(INSTANCE, LOCAL, { standing }), scope))
            if (resumed._tag === "Success") {
              yield* adopt(resumed.success, scope)
              trace.push(`${t} tracker resumed`)
              // As a host does for what it resumes: its workers join again (one told to stop by the released
              // instance has forgotten it).
              for (const slot of workers.values())
                yield* Effect.forkIn(Effect.ignore(slot.handle.join(INSTANCE)), slot.scope)
            } else if (resumed.failure instanceof RejectedError) {
              trace.push(`${t} nothing to resume: ${resumed.failure.message}`)
            } else {
              trace.push(`${t} resume failed: ${resumed.failure.message}; again in 500 ms`)
              schedule({ at: t + 500, event })
            }
            if (event.process && !workers.has(LOCAL)) yield* startW(LOCAL, s.localSlots)
            return
          }
        }
      })

    let calmAt = s.faultMs
    let calm = false
    let doneAt: number | undefined
    // Long enough for a delayed copy of the outcome to arrive
    // (a copy leaves up to maxDelayMs after a delayed original).
    const linger = 2 * s.policy.maxDelayMs + 1_000
    const finished = () =>
      deliveries.length > 0 && (current === undefined ? !base.instances.has(INSTANCE) : current.released)
    if (s.faultMs <= 0) {
      net.calm()
      calm = true
      calmAt = 0
    }
    yield* settle
    for (;;) {
      const t = yield* now()
      if (!calm && t >= s.faultMs) {
        net.calm()
        calm = true
        calmAt = t
        trace.push(`${t} calm`)
      }
      while (agenda.length > 0 && (agenda[0] as Agenda[number]).at <= t) {
        const entry = agenda.shift() as Agenda[number]
        // Crashes and joins belong to the fault phase; what they started (resumes, restarts) still happens.
        if (
          calm &&
          (entry.event._tag === "CrashWorker" ||
            entry.event._tag === "RestartWorker" ||
            entry.event._tag === "RestartTracker")
        )
          continue
        yield* apply(entry.event)
        yield* settle
      }
      if (finished()) {
        doneAt ??= t
        if (t >= doneAt + linger && agenda.length === 0) break
      } else doneAt = undefined
      if (calm && t > calmAt + s.calmBoundMs) {
        trace.push(`${t} bound after calm is over`)
        break
      }
      // Small steps: within one adjust the TestClock wakes sleep after sleep without letting the workers' promise
      // chains run in between, so a large step would freeze the tracker for simulated seconds.
      // Once the instance is done only copies of the outcome may still be on the way: coarse steps.
      yield* TestClock.adjust(doneAt === undefined ? s.stepMs : 1_000)
      yield* settle
    }
    const endedAt = yield* now()
    const progress = current === undefined ? undefined : yield* current.tracker.progress
    const stored = base.instances.get(INSTANCE)
    const liveRows =
      stored === undefined
        ? []
        : [...stored.byId.values()]
            .filter((row) => row.status < 5)
            .map(
              (row) =>
                `${row.id}:s${row.status}:a${row.attempt}:f${row.failures}:r${row.redeliveries}:${row.worker ?? "-"}`
            )
    return {
      progress,
      liveRows,
      config,
      deliveries,
      firstDeliveryAt,
      calmAt,
      endedAt,
      released: finished(),
      log,
      trace,
      networkStats: net.stats,
      longestHeartbeatWait: waits.longest,
      longestHeartbeatWaitAt: waits.at,
      storeFailures,
      writesGivenUp
    }
  })

/** Runs a scenario under its own TestClock, logs off; every fiber it started ends with it. */
export const runScenario = (s: Scenario, debug?: (line: string) => void): Promise<RunReport> =>
  Effect.runPromise(
    Effect.scoped(scenarioRun(s, debug)).pipe(
      Effect.provide(TestClock.layer()),
      Effect.provideService(References.MinimumLogLevel, "None")
    )
  )
