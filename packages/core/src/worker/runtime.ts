import { Cause, Effect, Exit, type Scope } from "effect"
import { countResults, runReturned, type Job, type Processor, type Reducer, type TaskContext, type TaskView } from "../api/job.ts"
import { Fifo } from "../machine/collections.ts"
import type { ReportsReply } from "../machine/state.ts"
import { RejectedError, type StoreError, type TransportError } from "../model/errors.ts"
import type { ContextAppend, DispatchedTask, Heartbeat, MapRequest, ReportBatch, StatusReport, StopMessage, TaskBatch } from "../model/messages.ts"
import { TaskKind, TaskStatus } from "../model/status.ts"
import type { TaskBody, TaskResult } from "../model/task.ts"
import type { StoredResult } from "../ports/task-store.ts"

type LinkError = RejectedError | StoreError | TransportError

/** How a worker reaches the tracker of one instance. */
export interface TrackerLink {
  readonly report: (batch: ReportBatch) => Effect.Effect<ReportsReply, LinkError>
  readonly map: (request: MapRequest) => Effect.Effect<number, LinkError>
  readonly heartbeat: (heartbeat: Heartbeat) => Effect.Effect<void, LinkError>
  readonly appendContext: (request: ContextAppend) => Effect.Effect<boolean, LinkError>
  readonly readResults: (run: number, afterSeq: number, limit: number) => Effect.Effect<ReadonlyArray<StoredResult>, LinkError>
}

export interface WorkerOptions {
  readonly id: string
  readonly slots: number
  readonly jobs: (name: string) => Job | undefined
  readonly connect: (instanceId: string) => TrackerLink
  /** Milliseconds between heartbeats (R-WORK-1). */
  readonly heartbeatInterval: number
}

export interface WorkerHandle {
  readonly id: string
  /** Registers with an instance's tracker and keeps heartbeating to it (R-WORK-5). */
  readonly join: (instanceId: string) => Effect.Effect<void, LinkError>
  /** A batch of tasks from a tracker; they queue for the slots. */
  readonly deliver: (batch: TaskBatch) => void
  readonly stop: (message: StopMessage) => void
  readonly stats: () => { readonly running: number; readonly queued: number; readonly completed: number }
}

interface InstanceOnWorker {
  readonly id: string
  readonly workerId: string
  readonly link: TrackerLink
  job: string
  paramsText: string
  params: unknown
  context: Record<string, unknown>
  /** Tasks queued or running here. */
  held: number
  /** Tasks with a status to report, each once, in the order they got one. */
  outbox: WorkerTask[]
  /** A report message is under way (or about to be sent). */
  flushing: boolean
  /** Tasks delivered while a report was under way: their receipts wait for the report after it. */
  receiptsLater: WorkerTask[]
  /** Receipts that have waited for one report: they go with the next. */
  receiptsNext: WorkerTask[]
  stopped: boolean
}

const RESULT_PAGE = 1_000

const decodeBody = (body: TaskBody): unknown => (typeof body === "string" ? JSON.parse(body) : body)
const encodeBody = (item: unknown): TaskBody =>
  item instanceof Uint8Array ? (item as Uint8Array<ArrayBuffer>) : (JSON.stringify(item) ?? "null")
/** JSON text of a result; no value is the one shared "null" (JSON.stringify makes a new string each time, and the store keeps every result). */
const encodeResult = (value: unknown): string => (value === null || value === undefined ? "null" : (JSON.stringify(value) ?? "null"))
const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : typeof error === "string" ? error : JSON.stringify(error) ?? String(error)

const failureMessage = (cause: Cause.Cause<unknown>): string => messageOf(Cause.squash(cause))

/** Runs a link call for a processor: a promise that rejects with an Error naming the tracker's reason. */
const callTracker = <A>(effect: Effect.Effect<A, LinkError>): Promise<A> =>
  Effect.runPromiseExit(effect).then((exit) => {
    if (Exit.isSuccess(exit)) return exit.value
    throw new Error(failureMessage(exit.cause))
  })

/** The newest status a task has to report; the outbox keeps only that one (ARCHITECTURE: worker runtime). */
type Pending = typeof TaskStatus.Received | typeof TaskStatus.Running | typeof TaskStatus.Failed | typeof TaskStatus.Succeeded

/**
 * One task on this worker: its place in the queue and the outbox, its processor's view of it (TaskView)
 * and its context (TaskContext), in one object handed to the processor as both. Its own fields are the
 * view's, so spreading or printing a task shows just those; the worker's bookkeeping is private.
 */
class WorkerTask implements TaskView, TaskContext {
  readonly id: string
  readonly name: string
  /** The decoded body, from the moment the task starts. */
  body: unknown = undefined
  readonly attempt: number
  readonly isRoot: boolean
  readonly #instance: InstanceOnWorker
  readonly #dispatched: DispatchedTask
  #controller: AbortController | undefined = undefined
  #mapChain: Promise<unknown> | undefined = undefined
  /** Items this attempt has mapped so far: where its next map call starts. */
  #mapped = 0
  #started = false
  #done = false
  #cancelled = false
  #acked = false
  /** Its slot while it runs, else -1. */
  #slot = -1
  /** What to report, 0 while the task is not in the outbox. */
  #pending: Pending | 0 = 0
  /** The result (Succeeded) or the error (Failed) to report. */
  #outcome = ""

  constructor(instance: InstanceOnWorker, dispatched: DispatchedTask) {
    this.id = dispatched.id
    this.name = dispatched.name
    this.attempt = dispatched.attempt
    this.isRoot = dispatched.kind === TaskKind.Root
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
  map(items: ReadonlyArray<unknown>, name: string): Promise<number> {
    const instance = this.#instance
    const request: MapRequest = {
      instanceId: instance.id,
      workerId: instance.workerId,
      taskId: this.id,
      attempt: this.attempt,
      name,
      from: this.#mapped,
      bodies: items.map(encodeBody)
    }
    this.#mapped += items.length
    // One task's map calls reach the tracker in the order they were made (R-MAP-2).
    const call = (this.#mapChain ?? Promise.resolve()).then(() => callTracker(instance.link.map(request)))
    this.#mapChain = call.catch(() => undefined)
    return call
  }
  appendContext(entries: Record<string, unknown>): Promise<boolean> {
    const instance = this.#instance
    return callTracker(
      instance.link.appendContext({
        instanceId: instance.id,
        workerId: instance.workerId,
        taskId: this.id,
        attempt: this.attempt,
        entries: JSON.parse(JSON.stringify(entries))
      })
    )
  }

  // The worker's side.
  get instance(): InstanceOnWorker {
    return this.#instance
  }
  get kind(): DispatchedTask["kind"] {
    return this.#dispatched.kind
  }
  get started(): boolean {
    return this.#started
  }
  get done(): boolean {
    return this.#done
  }
  get cancelled(): boolean {
    return this.#cancelled
  }
  get acked(): boolean {
    return this.#acked
  }

  /** Takes a slot and decodes the body for the processor; throws if the body is not JSON. */
  begin(slot: number): void {
    this.#started = true
    this.#slot = slot
    if (this.#dispatched.kind !== TaskKind.Final) this.body = decodeBody(this.#dispatched.body)
  }
  /** Done: gives its slot back. */
  end(): number {
    this.#done = true
    const slot = this.#slot
    this.#slot = -1
    return slot
  }
  acknowledge(): void {
    this.#acked = true
  }
  cancel(reason: string): void {
    this.#cancelled = true
    this.#controller?.abort(reason)
  }

  /** Sets the status to report; true if the task has to join the outbox. */
  setPending(status: Pending, outcome = ""): boolean {
    const joins = this.#pending === 0
    this.#pending = status
    this.#outcome = outcome
    return joins
  }
  /** The report to send now; the task leaves the outbox. */
  takeReport(): StatusReport {
    const status = this.#pending as Pending
    this.#pending = 0
    const { id: taskId, attempt } = this
    if (status === TaskStatus.Succeeded) return { taskId, attempt, status, result: this.#outcome }
    if (status === TaskStatus.Failed) return { taskId, attempt, status, error: this.#outcome }
    return { taskId, attempt, status }
  }
  /** A report that could not be sent is kept, unless a newer status replaced it meanwhile; true if it went back. */
  putBack(report: StatusReport): boolean {
    if (this.#pending !== 0) return false
    this.#pending = report.status
    this.#outcome = report.result ?? report.error ?? ""
    return true
  }
  /** Leaves the outbox without reporting (its instance stopped). */
  dropPending(): void {
    this.#pending = 0
  }
}

const resultOf = (row: StoredResult): TaskResult => {
  const ok = row.status === TaskStatus.Succeeded
  const result = ok ? (row.resultCut || row.result === null ? row.result : row.result === "null" ? null : JSON.parse(row.result)) : row.lastError
  return { taskId: row.id, name: row.name, ok, result, cut: row.resultCut }
}

/**
 * A run's terminal results for reduce, read page by page in seq order (R-FIN-3). A plain iterator: a
 * result already read is handed out at the cost of one resolved promise, where an async generator takes several.
 */
class ResultStream implements AsyncIterator<TaskResult> {
  readonly #link: TrackerLink
  readonly #run: number
  #page: ReadonlyArray<StoredResult> = []
  #at = 0
  #afterSeq = -1
  #last = false

  constructor(link: TrackerLink, run: number) {
    this.#link = link
    this.#run = run
  }

  next(): Promise<IteratorResult<TaskResult>> {
    const row = this.#page[this.#at]
    if (row !== undefined) {
      this.#at++
      return Promise.resolve({ done: false, value: resultOf(row) })
    }
    if (this.#last) return Promise.resolve({ done: true, value: undefined })
    return callTracker(this.#link.readResults(this.#run, this.#afterSeq, RESULT_PAGE)).then((page) => {
      this.#page = page
      this.#at = 0
      this.#last = page.length < RESULT_PAGE
      if (page.length > 0) this.#afterSeq = (page[page.length - 1] as StoredResult).seq
      return this.next()
    })
  }
}

const processorOf = (job: Job, kind: DispatchedTask["kind"]): Processor =>
  kind === TaskKind.Root && job.kind === "broadcast" ? (job.preProcess ?? (() => null)) : job.process

const reducerOf = (job: Job): Reducer =>
  job.kind === "mapReduce" ? job.reduce : job.kind === "broadcast" ? (job.postProcess ?? countResults) : countResults

/**
 * A worker: runs tasks on a fixed number of slots, reports statuses in batches holding only the newest
 * status per task, heartbeats to every instance it serves, and honours stop and kill. Processors run in
 * the slots directly: no fiber, timer or message per task; one report message carries every status
 * that came in while the previous one was under way.
 */
export const startWorker = (options: WorkerOptions): Effect.Effect<WorkerHandle, never, Scope.Scope> =>
  Effect.gen(function* () {
    const instances = new Map<string, InstanceOnWorker>()
    const queue = new Fifo<WorkerTask>()
    /** Running tasks by slot (no Set: entries that come and go all the time make a Set's tables outlive them). */
    const slots: Array<WorkerTask | undefined> = new Array(options.slots).fill(undefined)
    const freeSlots: number[] = Array.from({ length: options.slots }, (_, i) => options.slots - 1 - i)
    let completed = 0

    const instanceFor = (instanceId: string): InstanceOnWorker => {
      let instance = instances.get(instanceId)
      if (instance === undefined) {
        instance = {
          id: instanceId,
          workerId: options.id,
          link: options.connect(instanceId),
          job: "",
          paramsText: "",
          params: null,
          context: {},
          held: 0,
          outbox: [],
          flushing: false,
          receiptsLater: [],
          receiptsNext: [],
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
      idle: instance.held === 0 && instance.outbox.length === 0 && !instance.flushing
    })

    const flush = (instance: InstanceOnWorker): void => {
      if (instance.stopped) {
        instance.flushing = false
        return
      }
      const due = instance.receiptsNext
      instance.receiptsNext = instance.receiptsLater
      instance.receiptsLater = []
      for (const task of due) confirmReceipt(task)
      // With nothing else to carry them, waiting receipts go now.
      if (instance.outbox.length === 0) {
        const waiting = instance.receiptsNext
        instance.receiptsNext = []
        for (const task of waiting) confirmReceipt(task)
      }
      if (instance.outbox.length === 0) {
        instance.flushing = false
        return
      }
      const tasks = instance.outbox
      instance.outbox = []
      const reports: StatusReport[] = new Array(tasks.length)
      for (let i = 0; i < tasks.length; i++) reports[i] = (tasks[i] as WorkerTask).takeReport()
      Effect.runPromiseExit(instance.link.report({ instanceId: instance.id, workerId: options.id, reports })).then((exit) => {
        if (Exit.isFailure(exit)) {
          // Keep what was not superseded meanwhile and try again; a report is never dropped silently.
          if (!instance.stopped) {
            for (let i = 0; i < tasks.length; i++) {
              const task = tasks[i] as WorkerTask
              if (task.putBack(reports[i] as StatusReport)) instance.outbox.push(task)
            }
          }
          void Effect.runPromise(Effect.sleep(200)).then(() => flush(instance))
          return
        }
        flush(instance)
      })
    }

    const post = (task: WorkerTask, status: Pending, outcome?: string): void => {
      const instance = task.instance
      if (instance.stopped) return
      if (task.setPending(status, outcome)) instance.outbox.push(task)
      if (!instance.flushing) {
        instance.flushing = true
        // One microtask later: everything that finished synchronously meanwhile goes in the same message.
        void Promise.resolve().then(() => flush(instance))
      }
    }

    /** Confirms receipt (R-DISP-8) of a task that has not finished; a finished one reported its result instead. */
    const confirmReceipt = (task: WorkerTask): void => {
      if (task.done) return
      task.acknowledge()
      post(task, task.started ? TaskStatus.Running : TaskStatus.Received)
    }

    const finish = (task: WorkerTask, status: typeof TaskStatus.Succeeded | typeof TaskStatus.Failed, outcome: string): void => {
      const slot = task.end()
      if (slot >= 0) {
        slots[slot] = undefined
        freeSlots.push(slot)
      }
      task.instance.held--
      completed++
      if (!task.cancelled) post(task, status, outcome)
      pump()
    }

    const succeed = (task: WorkerTask, value: unknown): void => {
      let text: string
      try {
        text = encodeResult(value)
      } catch (error) {
        return finish(task, TaskStatus.Failed, messageOf(error))
      }
      finish(task, TaskStatus.Succeeded, text)
    }

    const fail = (task: WorkerTask, error: unknown): void => finish(task, TaskStatus.Failed, messageOf(error))

    /** Waits for a processor's promise; one async frame per task, no closures. */
    const settle = async (task: WorkerTask, pending: Promise<unknown>): Promise<void> => {
      let value: unknown
      try {
        value = await pending
      } catch (error) {
        return fail(task, error)
      }
      succeed(task, value)
    }

    const resultsOf = (instance: InstanceOnWorker, run: number): AsyncIterable<TaskResult> => ({
      [Symbol.asyncIterator]: () => new ResultStream(instance.link, run)
    })

    const start = (task: WorkerTask): void => {
      const instance = task.instance
      const slot = freeSlots.pop() as number
      slots[slot] = task
      if (task.acked) post(task, TaskStatus.Running)
      try {
        task.begin(slot)
        const job = options.jobs(instance.job)
        if (job === undefined) throw new Error(`job ${instance.job} is not known to worker ${options.id}`)
        const returned =
          task.kind === TaskKind.Final
            ? reducerOf(job)(resultsOf(instance, Number(task.id.split(".")[0])), task)
            : processorOf(job, task.kind)(task, task)
        // An Effect runs with the task's signal, so a kill interrupts it.
        const value = Effect.isEffect(returned) ? runReturned(returned, task.signal) : returned
        if (value instanceof Promise) void settle(task, value)
        else succeed(task, value)
      } catch (error) {
        fail(task, error)
      }
    }

    /** The worker's scope closed. */
    let closed = false
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
            continue
          }
          start(task)
        }
      } finally {
        pumping = false
      }
    }

    const deliver = (batch: TaskBatch): void => {
      if (closed) return
      const instance = instanceFor(batch.instanceId)
      if (instance.stopped) return
      instance.job = batch.job
      if (instance.paramsText !== batch.params) {
        instance.paramsText = batch.params
        instance.params = JSON.parse(batch.params)
      }
      instance.context = batch.context
      const dispatched = batch.tasks
      const tasks: WorkerTask[] = new Array(dispatched.length)
      for (let i = 0; i < dispatched.length; i++) {
        const task = new WorkerTask(instance, dispatched[i] as DispatchedTask)
        tasks[i] = task
        queue.push(task)
      }
      instance.held += tasks.length
      pump()
      // While a report is under way, receipts wait for the report after it: a task that finishes meanwhile
      // reports its result instead, one status change for the tracker rather than two. The wait is a report's
      // round trip or two, far below the ack timeout.
      if (instance.flushing) {
        for (const task of tasks) if (!task.done) instance.receiptsLater.push(task)
      } else {
        for (const task of tasks) confirmReceipt(task)
      }
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
        instance.receiptsLater = []
        instance.receiptsNext = []
        instances.delete(instance.id)
      }
    }

    /** A tracker that no longer knows the instance (finished, and its stop was lost): forget it here too. */
    const heartbeatTo = (instance: InstanceOnWorker) =>
      instance.link.heartbeat(heartbeatOf(instance)).pipe(
        Effect.catch((error) =>
          error instanceof RejectedError && error.reason === "unknown-instance"
            ? Effect.sync(() => stop({ instanceId: instance.id, taskIds: null, reason: error.message }))
            : Effect.void
        )
      )
    const heartbeatAll = Effect.suspend(() => Effect.forEach([...instances.values()], heartbeatTo, { concurrency: "unbounded", discard: true }))

    // Closing the worker's scope stops it: nothing queued starts, running tasks are aborted, nothing more is reported.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        for (const id of [...instances.keys()]) stop({ instanceId: id, taskIds: null, reason: "worker closed" })
      })
    )
    yield* Effect.forkScoped(
      Effect.forever(Effect.sleep(options.heartbeatInterval).pipe(Effect.andThen(heartbeatAll)))
    )

    return {
      id: options.id,
      join: (instanceId) => Effect.suspend(() => instanceFor(instanceId).link.heartbeat(heartbeatOf(instanceFor(instanceId)))),
      deliver,
      stop,
      stats: () => ({ running: options.slots - freeSlots.length, queued: queue.size, completed })
    }
  })
