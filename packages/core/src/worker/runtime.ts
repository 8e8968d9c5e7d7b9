import { Clock, Effect, Exit, Scope } from "effect"
import type { Job, TaskContext, TaskView } from "../model/job.ts"
import { Fifo } from "../machine/collections.ts"
import type { ReportsReply } from "../model/messages.ts"
import { ConfigError, RejectedError, type StoreError, type TransportError } from "../model/errors.ts"
import type {
  ContextAppend,
  DispatchedTask,
  Heartbeat,
  HeartbeatReply,
  MapRequest,
  PullRequest,
  ReportBatch,
  StatusReport,
  StopMessage,
  TaskBatch
} from "../model/messages.ts"
import { MAX_REPORTS_PER_MESSAGE, MAX_SLOTS } from "../model/messages.ts"
import { TaskKind, TaskStatus } from "../model/status.ts"
import { describeError, toTaskError, type TaskError } from "../model/task-error.ts"
import type { StoredResult } from "../ports/task-store.ts"
import { makeJobServices } from "./job-services.ts"
import { mapItemsProblem } from "../model/job-schemas.ts"
import {
  decodeBody,
  encodeBody,
  runTaskInto,
  type Executor,
  type Settled,
  type TaskCalls,
  type TaskRun
} from "./execute.ts"

export type LinkError = RejectedError | StoreError | TransportError

/** How a worker reaches the tracker of one instance. */
export interface TrackerLink {
  readonly report: (batch: ReportBatch) => Effect.Effect<ReportsReply, LinkError>
  readonly map: (request: MapRequest) => Effect.Effect<number, LinkError>
  /** Answers how the instance hands out sub-tasks; a link that answers nothing means push. */
  readonly heartbeat: (heartbeat: Heartbeat) => Effect.Effect<HeartbeatReply | void, LinkError>
  readonly appendContext: (request: ContextAppend) => Effect.Effect<boolean, LinkError>
  readonly readResults: (
    run: number,
    afterSeq: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<StoredResult>, LinkError>
  /** Pull mode (R-DISP-9): a page of sub-tasks, or null if none waits. */
  readonly pull?: (request: PullRequest) => Effect.Effect<TaskBatch | null, LinkError>
}

export interface WorkerOptions {
  readonly id: string
  readonly slots: number
  readonly jobs: (name: string) => Job | undefined
  readonly connect: (instanceId: string) => TrackerLink
  /** Milliseconds between heartbeats (R-WORK-1). */
  readonly heartbeatInterval: number
  /** Runs processors elsewhere (another thread); by default they run in this thread, in the slots. */
  readonly executor?: Executor
  /** Pull mode: how long to wait before asking again when the tracker had nothing. Default 100 ms. */
  readonly pullIdleMs?: number
}

export interface WorkerHandle {
  readonly id: string
  /** Registers with an instance's tracker and keeps heartbeating to it (R-WORK-5). */
  readonly join: (instanceId: string) => Effect.Effect<void, LinkError>
  /**
   * A batch of tasks from a tracker: taken at once, run later (R-DISP-10), so the answer to the send is the
   * receipt. Refused (and nothing taken) if the batch leaves out params this worker does not have.
   */
  readonly deliver: (batch: TaskBatch) => RejectedError | undefined
  readonly stop: (message: StopMessage) => void
  readonly stats: () => { readonly running: number; readonly queued: number; readonly completed: number }
}

interface InstanceOnWorker {
  readonly id: string
  readonly link: TrackerLink
  job: string
  /** JSON text of the params, once a batch brought them. */
  paramsText: string | undefined
  params: unknown
  maxResultBytes: number | undefined
  context: Record<string, unknown>
  /** Tasks queued or running here. */
  held: number
  /** The newest attempt of each task queued or running here: a newer one delivered supersedes it. */
  latest: Map<string, WorkerTask>
  /** Tasks with a status to report, each once, in the order they got one. */
  outbox: WorkerTask[]
  /** A report message is under way (or about to be sent). */
  flushing: boolean
  /** The highest and the lowest batch seq taken, for heartbeats (R-WORK-3). */
  seen: number
  firstSeen: number
  /** Numbers the messages to this instance's tracker. */
  sent: number
  /** The tracker hands out sub-tasks only when asked (R-DISP-9). */
  pullMode: boolean
  pulling: boolean
  /** Result bytes one report message may carry; halved when a message was too large. */
  reportBytes: number
  stopped: boolean
}

/** Result and error bytes one report message carries at most: far below any receiver's body limit. */
const REPORT_BYTES = 4 * 1024 * 1024
/** Tasks a pulling worker asks for beyond its free slots, so it never idles between pages. */
const PULL_AHEAD = 16

/** Retry delays of a call to the tracker whose answer was lost: 50 ms doubling to 5 s, for as long as it takes. */
const retryDelay = (attempt: number): number => Math.min(5_000, 50 * 2 ** Math.min(attempt, 7))

/**
 * Errors a retry may cure: the call or its answer was lost on the way. A StoreError is an answer: the tracker
 * retried its write already and the instance failed with it (R-RETRY-4).
 */
const isLost = (error: LinkError): boolean => error._tag === "TransportError" && error.reason !== "too-large"

/** An Error for user code, naming the tracker's reason. */
const linkFailure = (error: LinkError): Error =>
  Object.assign(new Error(error.message), { name: error._tag, reason: error.reason })

/** The newest status a task has to report; the outbox keeps only that one (ARCHITECTURE: worker runtime). */
type Pending = typeof TaskStatus.Received | typeof TaskStatus.Failed | typeof TaskStatus.Succeeded

/**
 * One task on this worker: its place in the queue and the outbox, its processor's view of it (TaskView)
 * and its context (TaskContext), in one object handed to the processor as both. Its own fields are the
 * view's, so spreading or printing a task shows just those; the worker's bookkeeping is private.
 */
class WorkerTask implements TaskView, TaskContext, TaskCalls {
  readonly id: string
  readonly name: string
  /** The decoded body, from the moment the task starts. */
  body: unknown = undefined
  readonly attempt: number
  readonly isRoot: boolean
  readonly #instance: InstanceOnWorker
  readonly #dispatched: DispatchedTask
  readonly #worker: WorkerCore
  #controller: AbortController | undefined = undefined
  #mapChain: Promise<unknown> | undefined = undefined
  /** Items of this attempt the tracker has taken: where its next map call starts (R-MAP-6). */
  #mapped = 0
  /** A map call of this attempt was given up without an answer: whether it created its items is unknown. */
  #mapLost = false
  #done = false
  #cancelled = false
  /** Its slot while it runs, else -1. */
  #slot = -1
  /** What to report, 0 while the task is not in the outbox. */
  #pending: Pending | 0 = 0
  #result = ""
  #error: TaskError | undefined = undefined

  constructor(worker: WorkerCore, instance: InstanceOnWorker, dispatched: DispatchedTask) {
    this.id = dispatched.id
    this.name = dispatched.name
    this.attempt = dispatched.attempt
    this.isRoot = dispatched.kind === TaskKind.Root
    this.#worker = worker
    this.#instance = instance
    this.#dispatched = dispatched
  }

  get instanceId(): string {
    return this.#instance.id
  }
  get params(): unknown {
    return this.#instance.params
  }
  get context(): Record<string, unknown> {
    return this.#instance.context
  }
  get signal(): AbortSignal {
    this.#controller ??= new AbortController()
    return this.#controller.signal
  }
  /**
   * One task's map calls reach the tracker one after the other, in call order, each starting where the
   * ones the tracker took ended; a call whose answer was lost is sent again as it was (R-MAP-2, R-MAP-6).
   */
  map(items: ReadonlyArray<unknown>, name: string): Promise<number> {
    const problem = this.#worker.itemsProblem(this.#instance.job, name, items)
    if (problem !== undefined) return Promise.reject(Object.assign(new Error(`map: ${problem}`), { name: "MapError" }))
    let bodies: MapRequest["bodies"]
    try {
      bodies = items.map(encodeBody)
    } catch (error) {
      return Promise.reject(
        Object.assign(new Error(`map: an item cannot be sent as JSON: ${toTaskError(error).message}`), {
          name: "MapError"
        })
      )
    }
    const send = (): Promise<number> => {
      // After a call given up unanswered the numbering of this attempt is unknown: a later call would take
      // the numbers of items that may exist already (R-MAP-6). The attempt maps no more; a retry starts over.
      if (this.#mapLost) {
        return Promise.reject(
          Object.assign(new Error("map: an earlier map call of this attempt got no answer"), { name: "MapError" })
        )
      }
      const instance = this.#instance
      const request: MapRequest = {
        instanceId: instance.id,
        workerId: this.#worker.id,
        taskId: this.id,
        attempt: this.attempt,
        name,
        from: this.#mapped,
        bodies
      }
      return this.#worker.call(this, instance.link.map(request)).then(
        (created) => {
          this.#mapped += bodies.length
          return created
        },
        (error: unknown) => {
          // A refusal created nothing and used up no number; anything else may have got through.
          if (!(error instanceof Error && error.name === "RejectedError")) this.#mapLost = true
          throw error
        }
      )
    }
    const call = (this.#mapChain ?? Promise.resolve()).then(send)
    this.#mapChain = call.catch(() => undefined)
    return call
  }
  appendContext(entries: Record<string, unknown>): Promise<boolean> {
    let copy: Record<string, ContextAppend["entries"][string]>
    try {
      copy = JSON.parse(JSON.stringify(entries))
    } catch (error) {
      return Promise.reject(
        new Error(`appendContext: the entries cannot be sent as JSON: ${toTaskError(error).message}`)
      )
    }
    const instance = this.#instance
    return this.#worker.call(
      this,
      instance.link.appendContext({
        instanceId: instance.id,
        workerId: this.#worker.id,
        taskId: this.id,
        attempt: this.attempt,
        entries: copy
      })
    )
  }
  readResults(afterSeq: number, limit: number): Promise<ReadonlyArray<StoredResult>> {
    return this.#worker.call(this, this.#instance.link.readResults(Number(this.id.split(".")[0]), afterSeq, limit))
  }

  // The worker's side.
  get instance(): InstanceOnWorker {
    return this.#instance
  }
  get dispatched(): DispatchedTask {
    return this.#dispatched
  }
  get kind(): DispatchedTask["kind"] {
    return this.#dispatched.kind
  }
  get done(): boolean {
    return this.#done
  }
  get cancelled(): boolean {
    return this.#cancelled
  }

  /** How the task ended, from its processor: hands it to the worker. */
  settle(settled: Settled): void {
    this.#worker.finish(this, settled)
  }

  /** Takes a slot. */
  begin(slot: number): void {
    this.#slot = slot
  }
  /** Decodes the body for a processor in this thread; throws if the body is not JSON. */
  decode(): void {
    if (this.#dispatched.kind !== TaskKind.Final) this.body = decodeBody(this.#dispatched.body)
  }
  /** Done: gives its slot back. */
  end(): number {
    this.#done = true
    const slot = this.#slot
    this.#slot = -1
    return slot
  }
  cancel(reason: string): void {
    this.#cancelled = true
    this.#controller?.abort(reason)
  }

  /** Sets the status to report; true if the task has to join the outbox. */
  setPending(status: Pending, settled?: Settled): boolean {
    const joins = this.#pending === 0
    this.#pending = status
    if (settled !== undefined) {
      if (settled.ok) this.#result = settled.result
      else this.#error = settled.error
    }
    return joins
  }
  /** Bytes of result or error the pending report carries. */
  get reportSize(): number {
    return this.#pending === TaskStatus.Succeeded ? this.#result.length : this.#pending === TaskStatus.Failed ? 256 : 0
  }
  /** The report to send now; the task leaves the outbox. */
  takeReport(): StatusReport {
    const status = this.#pending as Pending
    this.#pending = 0
    const { id: taskId, attempt } = this
    if (status === TaskStatus.Succeeded) return { taskId, attempt, status, result: this.#result }
    if (status === TaskStatus.Failed)
      return { taskId, attempt, status, error: this.#error ?? { tag: "Error", message: "failed" } }
    return { taskId, attempt, status }
  }
  /** A report that could not be sent is kept, unless a newer status replaced it meanwhile; true if it went back. */
  putBack(report: StatusReport): boolean {
    if (this.#pending !== 0) return false
    this.#pending = report.status as Pending
    return true
  }
  /** Leaves the outbox without reporting (its instance stopped). */
  dropPending(): void {
    this.#pending = 0
  }
}

/** What the tasks of a worker need of it. */
interface WorkerCore {
  readonly id: string
  /** A call to the tracker for a running task: sent again while its answer is lost, until the task ends. */
  readonly call: <A>(task: WorkerTask, effect: Effect.Effect<A, LinkError>) => Promise<A>
  /** The task settled: its slot is free, its status goes out. */
  readonly finish: (task: WorkerTask, settled: Settled) => void
  /** Why a map call's items do not fit their task name's schema, if the job declares one. */
  readonly itemsProblem: (job: string, name: string, items: ReadonlyArray<unknown>) => string | undefined
}

const checkOptions = (options: WorkerOptions): ConfigError | undefined => {
  const bad = (message: string) =>
    new ConfigError({ reason: "invalid-config", message: `worker ${options.id}: ${message}` })
  if (!Number.isInteger(options.slots) || options.slots < 1 || options.slots > MAX_SLOTS) {
    return bad(`slots must be a whole number from 1 to ${MAX_SLOTS}, not ${String(options.slots)}`)
  }
  if (!Number.isFinite(options.heartbeatInterval) || options.heartbeatInterval <= 0) {
    return bad(`heartbeatInterval must be a positive number of milliseconds, not ${String(options.heartbeatInterval)}`)
  }
  return undefined
}

/**
 * A worker: takes batches at once and runs their tasks later on a fixed number of slots (R-DISP-10), reports
 * statuses in batches holding only the newest status per task, heartbeats to every instance it serves, pulls
 * in pull mode, and honours stop and kill. Processors run in the slots directly (no fiber, timer or message
 * per task), or on an executor; one report message carries every status that came in while the previous
 * one was under way.
 */
export const startWorker = (options: WorkerOptions): Effect.Effect<WorkerHandle, ConfigError, Scope.Scope> =>
  Effect.gen(function* () {
    const invalid = checkOptions(options)
    if (invalid !== undefined) return yield* invalid
    // Everything the worker starts runs with the services it was started with (a test's clock among them).
    const services = yield* Effect.context<never>()
    const runFork = Effect.runForkWith(services)
    const runPromiseExit = Effect.runPromiseExitWith(services)
    // Each job's layer is built once for this worker and released with it.
    const jobServices = makeJobServices(yield* Scope.Scope, runPromiseExit)
    const sleep = (ms: number): Promise<unknown> => runPromiseExit(Effect.sleep(ms))
    // The start time first (the worker's own clock): a tracker tells a late message of an earlier run of this
    // worker from a new run, even one it never saw (R-WORK-2).
    const startedAt = (yield* Clock.currentTimeMillis).toString(36).padStart(9, "0")
    const incarnation = `${startedAt}-${globalThis.crypto.randomUUID()}`
    const instances = new Map<string, InstanceOnWorker>()
    const queue = new Fifo<WorkerTask>()
    /** Running tasks by slot (no Set: entries that come and go all the time make a Set's tables outlive them). */
    const slots: Array<WorkerTask | undefined> = new Array(options.slots).fill(undefined)
    const freeSlots: number[] = Array.from({ length: options.slots }, (_, i) => options.slots - 1 - i)
    const pullIdleMs = options.pullIdleMs ?? 100
    let completed = 0
    /** The worker's scope closed. */
    let closed = false

    const live = (task: WorkerTask) => !closed && !task.cancelled && !task.done && !task.instance.stopped

    const core: WorkerCore = {
      id: options.id,
      finish: (task, settled) => finish(task, settled),
      itemsProblem: (job, name, items) => mapItemsProblem(options.jobs(job), name, items),
      call: async <A>(task: WorkerTask, effect: Effect.Effect<A, LinkError>): Promise<A> => {
        for (let attempt = 0; ; attempt++) {
          // A closed worker is a dead process: its processors' calls go nowhere.
          if (closed) throw new Error(`worker ${options.id} is closed`)
          const exit = await runPromiseExit(effect)
          if (Exit.isSuccess(exit)) return exit.value
          const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")
          const failure = error === undefined ? undefined : (error as unknown as { error: LinkError }).error
          if (failure === undefined || !isLost(failure) || !live(task)) {
            throw failure === undefined
              ? new Error(`call to the tracker failed: ${describeError(toTaskError(exit.cause))}`)
              : linkFailure(failure)
          }
          await sleep(retryDelay(attempt))
        }
      }
    }

    const instanceFor = (instanceId: string): InstanceOnWorker => {
      let instance = instances.get(instanceId)
      if (instance === undefined) {
        instance = {
          id: instanceId,
          link: options.connect(instanceId),
          job: "",
          paramsText: undefined,
          params: null,
          maxResultBytes: undefined,
          context: {},
          held: 0,
          latest: new Map(),
          outbox: [],
          flushing: false,
          seen: -1,
          firstSeen: -1,
          sent: 0,
          pullMode: false,
          pulling: false,
          reportBytes: REPORT_BYTES,
          stopped: false
        }
        instances.set(instanceId, instance)
      }
      return instance
    }

    const heartbeatOf = (instance: InstanceOnWorker): Heartbeat => ({
      instanceId: instance.id,
      workerId: options.id,
      slots: options.slots,
      freeSlots: freeSlots.length,
      queueLength: queue.size,
      idle: instance.held === 0 && instance.outbox.length === 0 && !instance.flushing,
      incarnation,
      seen: instance.seen,
      firstSeen: instance.firstSeen,
      n: ++instance.sent
    })

    /** Takes from the outbox what one message may carry. */
    const takeReports = (instance: InstanceOnWorker): { tasks: WorkerTask[]; reports: StatusReport[] } => {
      const outbox = instance.outbox
      let count = 0
      let bytes = 0
      while (
        count < outbox.length &&
        count < MAX_REPORTS_PER_MESSAGE &&
        (count === 0 || bytes + (outbox[count] as WorkerTask).reportSize <= instance.reportBytes)
      ) {
        bytes += (outbox[count] as WorkerTask).reportSize
        count++
      }
      const tasks = count === outbox.length ? outbox : outbox.slice(0, count)
      instance.outbox = count === outbox.length ? [] : outbox.slice(count)
      const reports: StatusReport[] = new Array(tasks.length)
      for (let i = 0; i < tasks.length; i++) reports[i] = (tasks[i] as WorkerTask).takeReport()
      return { tasks, reports }
    }

    let failedFlushes = 0
    const flush = (instance: InstanceOnWorker): void => {
      if (instance.stopped || instance.outbox.length === 0) {
        instance.flushing = false
        return
      }
      const { tasks, reports } = takeReports(instance)
      const batch: ReportBatch = {
        instanceId: instance.id,
        workerId: options.id,
        n: ++instance.sent,
        incarnation,
        reports
      }
      runPromiseExit(instance.link.report(batch)).then((exit) => {
        if (Exit.isSuccess(exit)) {
          failedFlushes = 0
          if (instance.reportBytes < REPORT_BYTES)
            instance.reportBytes = Math.min(REPORT_BYTES, instance.reportBytes * 2)
          return flush(instance)
        }
        const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail") as { error: LinkError } | undefined
        const error = failure?.error
        if (error instanceof RejectedError && error.reason === "unknown-instance") {
          // The tracker no longer knows the instance (finished, and its stop was lost): forget it here too.
          return stop({ instanceId: instance.id, taskIds: null, reason: error.message })
        }
        // Too large for the receiver: smaller messages from now on (R-RETRY-3: one large result fails no other).
        if (error !== undefined && error._tag === "TransportError" && error.reason === "too-large")
          instance.reportBytes = Math.max(1, instance.reportBytes >> 2)
        // Keep what was not superseded meanwhile and try again; a report is never dropped silently.
        if (!instance.stopped) {
          const kept: WorkerTask[] = []
          for (let i = 0; i < tasks.length; i++) {
            const task = tasks[i] as WorkerTask
            if (task.putBack(reports[i] as StatusReport)) kept.push(task)
          }
          instance.outbox = kept.concat(instance.outbox)
        }
        void sleep(retryDelay(failedFlushes++)).then(() => flush(instance))
      })
    }

    const post = (task: WorkerTask, status: Pending, settled?: Settled): void => {
      const instance = task.instance
      if (instance.stopped) return
      if (task.setPending(status, settled)) instance.outbox.push(task)
      if (!instance.flushing) {
        instance.flushing = true
        // One microtask later: everything that finished synchronously meanwhile goes in the same message.
        void Promise.resolve().then(() => flush(instance))
      }
    }

    const finish = (task: WorkerTask, settled: Settled): void => {
      const slot = task.end()
      if (slot >= 0) {
        slots[slot] = undefined
        freeSlots.push(slot)
      }
      task.instance.held--
      if (task.instance.latest.get(task.id) === task) task.instance.latest.delete(task.id)
      completed++
      if (!task.cancelled) post(task, settled.ok ? TaskStatus.Succeeded : TaskStatus.Failed, settled)
      pump()
      if (task.instance.pullMode) pullMore(task.instance)
    }

    const unknownJob = (instance: InstanceOnWorker): Settled => ({
      ok: false,
      error: { tag: "UnknownJob", message: `job ${instance.job} is not known to worker ${options.id}` }
    })

    /** Runs a task on the executor, or in this thread; `task.settle` gets how it ended. */
    const start = (task: WorkerTask): void => {
      const slot = freeSlots.pop() as number
      slots[slot] = task
      task.begin(slot)
      const instance = task.instance
      if (options.executor !== undefined) {
        const run: TaskRun = {
          instanceId: instance.id,
          job: instance.job,
          task: task.dispatched,
          params: instance.paramsText ?? "null",
          context: instance.context,
          maxResultBytes: instance.maxResultBytes
        }
        void options.executor
          .run(run, task, task.signal)
          .catch((error: unknown): Settled => ({ ok: false, error: toTaskError(error) }))
          .then((settled) => task.settle(settled))
        return
      }
      const job = options.jobs(instance.job)
      if (job === undefined) return task.settle(unknownJob(instance))
      try {
        task.decode()
      } catch (error) {
        return task.settle({ ok: false, error: toTaskError(error) })
      }
      runTaskInto(job, task.kind, task, instance.maxResultBytes, task, jobServices.runnerOf(job))
    }

    // Tasks that finish synchronously call pump again from inside start: the flag turns that into a loop.
    let pumping = false
    function pump(): void {
      if (pumping || closed) return
      pumping = true
      try {
        while (freeSlots.length > 0) {
          const task = queue.shift()
          if (task === undefined) return
          if (task.cancelled) {
            task.instance.held--
            if (task.instance.latest.get(task.id) === task) task.instance.latest.delete(task.id)
            continue
          }
          start(task)
        }
      } finally {
        pumping = false
      }
    }

    /**
     * Processors start on a later turn of the event loop, never inside deliver: taking a batch is its receipt
     * (R-DISP-10).
     */
    let pumpScheduled = false
    const schedulePump = (): void => {
      if (pumpScheduled || closed) return
      pumpScheduled = true
      runFork(
        Effect.yieldNow.pipe(
          Effect.andThen(
            Effect.sync(() => {
              pumpScheduled = false
              pump()
            })
          )
        )
      )
    }

    const take = (instance: InstanceOnWorker, batch: TaskBatch, pulled: boolean): void => {
      instance.job = batch.job
      if (batch.params !== undefined && instance.paramsText !== batch.params) {
        instance.paramsText = batch.params
        instance.params = JSON.parse(batch.params)
      }
      instance.maxResultBytes = batch.maxResultBytes
      instance.context = batch.context
      if (batch.seq > instance.seen) instance.seen = batch.seq
      if (instance.firstSeen < 0 || batch.seq < instance.firstSeen) instance.firstSeen = batch.seq
      const dispatched = batch.tasks
      for (let i = 0; i < dispatched.length; i++) {
        const task = new WorkerTask(core, instance, dispatched[i] as DispatchedTask)
        // The tracker sends a newer attempt only once it gave the older one up (lost with a worker that was only
        // late, say): the older one here would run for nothing, so it stops, and attempts never pile up (R-WORK-2).
        const older = instance.latest.get(task.id)
        if (older !== undefined && older.attempt < task.attempt) older.cancel(`superseded by attempt ${task.attempt}`)
        if (older === undefined || older.attempt < task.attempt) instance.latest.set(task.id, task)
        queue.push(task)
        // A pulled batch has no send whose answer confirms it: its receipt goes with the next report.
        if (pulled) post(task, TaskStatus.Received)
      }
      instance.held += dispatched.length
      schedulePump()
    }

    const deliver = (batch: TaskBatch): RejectedError | undefined => {
      if (closed) return new RejectedError({ reason: "unknown-worker", message: `worker ${options.id} is closed` })
      const instance = instanceFor(batch.instanceId)
      if (instance.stopped)
        return new RejectedError({
          reason: "instance-finished",
          message: `worker ${options.id} stopped instance ${batch.instanceId}`
        })
      if (batch.params === undefined && instance.paramsText === undefined) {
        return new RejectedError({
          reason: "bad-input",
          message: `worker ${options.id} has no params of ${batch.instanceId}: send them with the batch`
        })
      }
      try {
        if (batch.params !== undefined) JSON.parse(batch.params)
      } catch {
        return new RejectedError({ reason: "bad-input", message: `the params of ${batch.instanceId} are not JSON` })
      }
      take(instance, batch, false)
      return undefined
    }

    /** Pull mode: asks for a page whenever there is room, waits a little when there was nothing (R-DISP-9). */
    const pullMore = (instance: InstanceOnWorker): void => {
      const pullCall = instance.link.pull
      if (pullCall === undefined || instance.pulling || instance.stopped || closed) return
      const room = freeSlots.length + PULL_AHEAD - queue.size
      if (room <= 0) return
      instance.pulling = true
      runPromiseExit(
        pullCall({ instanceId: instance.id, workerId: options.id, incarnation, pageSize: Math.min(room, MAX_SLOTS) })
      ).then(async (exit) => {
        let again = true
        if (Exit.isSuccess(exit)) {
          if (exit.value !== null && !instance.stopped && !closed) take(instance, exit.value, true)
          else await sleep(pullIdleMs)
        } else {
          const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail") as
            | { error: LinkError }
            | undefined
          if (failure?.error instanceof RejectedError && failure.error.reason === "unknown-instance") again = false
          else await sleep(pullIdleMs * 5)
        }
        instance.pulling = false
        if (again) pullMore(instance)
      })
    }

    const learn = (instance: InstanceOnWorker, reply: HeartbeatReply | void): void => {
      const pull = reply !== undefined && reply.dispatchMode === "pull"
      if (pull === instance.pullMode) return
      instance.pullMode = pull
      if (pull) pullMore(instance)
    }

    const stop = (message: StopMessage): void => {
      const instance = instances.get(message.instanceId)
      if (instance === undefined) return
      const only = message.taskIds === null ? null : new Set(message.taskIds)
      const cancel = (task: WorkerTask) => {
        if (task.instance !== instance || (only !== null && !only.has(task.id))) return
        task.cancel(message.reason)
      }
      for (const task of queue) cancel(task)
      for (const task of slots) if (task !== undefined) cancel(task)
      if (only === null) {
        instance.stopped = true
        for (const task of instance.outbox) task.dropPending()
        instance.outbox = []
        instances.delete(instance.id)
      }
    }

    /** A tracker that no longer knows the instance (finished, and its stop was lost): forget it here too. */
    const heartbeatTo = (instance: InstanceOnWorker) =>
      instance.link.heartbeat(heartbeatOf(instance)).pipe(
        Effect.tap((reply) => Effect.sync(() => learn(instance, reply))),
        Effect.catch((error) =>
          error instanceof RejectedError && error.reason === "unknown-instance"
            ? Effect.sync(() => stop({ instanceId: instance.id, taskIds: null, reason: error.message }))
            : Effect.void
        ),
        Effect.catchDefect(() => Effect.void)
      )
    const heartbeatAll = Effect.suspend(() =>
      Effect.forEach([...instances.values()], heartbeatTo, { concurrency: "unbounded", discard: true })
    )

    // Closing the worker's scope stops it: nothing queued starts, running tasks are aborted, nothing more is reported.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        for (const id of [...instances.keys()]) stop({ instanceId: id, taskIds: null, reason: "worker closed" })
      })
    )
    yield* Effect.forkScoped(Effect.forever(Effect.sleep(options.heartbeatInterval).pipe(Effect.andThen(heartbeatAll))))

    return {
      id: options.id,
      join: (instanceId) =>
        Effect.suspend(() => {
          const instance = instanceFor(instanceId)
          return instance.link.heartbeat(heartbeatOf(instance)).pipe(
            Effect.tap((reply) => Effect.sync(() => learn(instance, reply))),
            Effect.asVoid
          )
        }),
      deliver,
      stop,
      stats: () => ({ running: options.slots - freeSlots.length, queued: queue.size, completed })
    }
  })
