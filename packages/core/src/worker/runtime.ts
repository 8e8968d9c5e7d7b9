import { Cause, Effect, Exit, type Scope } from "effect"
import { countResults, runReturned, type Job, type Processor, type Reducer, type TaskContext, type TaskView } from "../api/job.ts"
import { Fifo } from "../machine/collections.ts"
import type { ReportsReply } from "../machine/state.ts"
import type { RejectedError, StoreError, TransportError } from "../model/errors.ts"
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
  readonly link: TrackerLink
  job: string
  paramsText: string
  params: unknown
  context: Record<string, unknown>
  /** Tasks queued or running here. */
  held: number
  /** Newest unsent status per task. */
  readonly outbox: Map<string, StatusReport>
  flushing: boolean
  stopped: boolean
}

interface Item {
  readonly instance: InstanceOnWorker
  readonly task: DispatchedTask
  cancelled: boolean
  controller: AbortController | undefined
  mapChain: Promise<unknown> | undefined
  started: boolean
  /** Its receipt was reported: a later start is reported as Running. */
  acked: boolean
  done: boolean
}

const RESULT_PAGE = 1_000

const decodeBody = (body: TaskBody): unknown => (typeof body === "string" ? JSON.parse(body) : body)
const encodeBody = (item: unknown): TaskBody =>
  item instanceof Uint8Array ? (item as Uint8Array<ArrayBuffer>) : (JSON.stringify(item) ?? "null")
const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : typeof error === "string" ? error : JSON.stringify(error) ?? String(error)

const failureMessage = (cause: Cause.Cause<unknown>): string => messageOf(Cause.squash(cause))

/** Runs a link call for a processor: a promise that rejects with an Error naming the tracker's reason. */
const callTracker = <A>(effect: Effect.Effect<A, LinkError>): Promise<A> =>
  Effect.runPromiseExit(effect).then((exit) => {
    if (Exit.isSuccess(exit)) return exit.value
    throw new Error(failureMessage(exit.cause))
  })

const processorFor = (job: Job, task: DispatchedTask): { process: Processor } | { reduce: Reducer } => {
  if (task.kind === TaskKind.Final) {
    return { reduce: job.kind === "mapReduce" ? job.reduce : job.kind === "broadcast" ? (job.postProcess ?? countResults) : countResults }
  }
  if (task.kind === TaskKind.Root && job.kind === "broadcast") return { process: job.preProcess ?? (() => null) }
  return { process: job.process }
}

/** A processor's view of its instance; one small object per task, its methods on the prototype. */
class ItemContext implements TaskContext {
  readonly #item: Item
  readonly #workerId: string
  constructor(item: Item, workerId: string) {
    this.#item = item
    this.#workerId = workerId
  }
  get instanceId() {
    return this.#item.instance.id
  }
  get params() {
    return this.#item.instance.params
  }
  get context() {
    return this.#item.instance.context
  }
  get signal() {
    this.#item.controller ??= new AbortController()
    return this.#item.controller.signal
  }
  map(items: ReadonlyArray<unknown>, name: string): Promise<number> {
    const item = this.#item
    const request: MapRequest = {
      instanceId: item.instance.id,
      workerId: this.#workerId,
      taskId: item.task.id,
      attempt: item.task.attempt,
      name,
      bodies: items.map(encodeBody)
    }
    // One task's map calls reach the tracker in the order they were made (R-MAP-2).
    const call = (item.mapChain ?? Promise.resolve()).then(() => callTracker(item.instance.link.map(request)))
    item.mapChain = call.catch(() => undefined)
    return call
  }
  appendContext(entries: Record<string, unknown>): Promise<boolean> {
    const item = this.#item
    return callTracker(
      item.instance.link.appendContext({
        instanceId: item.instance.id,
        workerId: this.#workerId,
        taskId: item.task.id,
        attempt: item.task.attempt,
        entries: JSON.parse(JSON.stringify(entries))
      })
    )
  }
}

/**
 * A worker: runs tasks on a fixed number of slots, reports statuses in batches holding only the newest
 * status per task, heartbeats to every instance it serves, and honours stop and kill. Processors run in
 * the slots directly: no fiber, timer or message per task; one report message carries every status
 * that came in while the previous one was under way.
 */
export const startWorker = (options: WorkerOptions): Effect.Effect<WorkerHandle, never, Scope.Scope> =>
  Effect.gen(function* () {
    const instances = new Map<string, InstanceOnWorker>()
    const queue = new Fifo<Item>()
    const runningItems = new Set<Item>()
    let completed = 0

    const instanceFor = (instanceId: string): InstanceOnWorker => {
      let instance = instances.get(instanceId)
      if (instance === undefined) {
        instance = {
          id: instanceId,
          link: options.connect(instanceId),
          job: "",
          paramsText: "",
          params: null,
          context: {},
          held: 0,
          outbox: new Map(),
          flushing: false,
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
      freeSlots: Math.max(0, options.slots - runningItems.size),
      queueLength: queue.size,
      idle: instance.held === 0 && instance.outbox.size === 0 && !instance.flushing
    })

    const flush = (instance: InstanceOnWorker): void => {
      if (instance.outbox.size === 0 || instance.stopped) {
        instance.flushing = false
        return
      }
      const reports = [...instance.outbox.values()]
      instance.outbox.clear()
      Effect.runPromiseExit(instance.link.report({ instanceId: instance.id, workerId: options.id, reports })).then((exit) => {
        if (Exit.isFailure(exit)) {
          // Keep what was not superseded meanwhile and try again; a report is never dropped silently.
          for (const report of reports) if (!instance.outbox.has(report.taskId)) instance.outbox.set(report.taskId, report)
          void Effect.runPromise(Effect.sleep(200)).then(() => flush(instance))
          return
        }
        flush(instance)
      })
    }

    const post = (instance: InstanceOnWorker, report: StatusReport): void => {
      if (instance.stopped) return
      instance.outbox.set(report.taskId, report)
      if (!instance.flushing) {
        instance.flushing = true
        // One microtask later: everything that finished synchronously meanwhile goes in the same message.
        void Promise.resolve().then(() => flush(instance))
      }
    }

    const finish = (item: Item, report: StatusReport): void => {
      item.done = true
      runningItems.delete(item)
      item.instance.held--
      completed++
      if (!item.cancelled) post(item.instance, report)
      pump()
    }

    const contextFor = (item: Item): TaskContext => new ItemContext(item, options.id)

    const resultsOf = (instance: InstanceOnWorker, run: number): AsyncIterable<TaskResult> => ({
      async *[Symbol.asyncIterator]() {
        let afterSeq = -1
        for (;;) {
          const page = await callTracker(instance.link.readResults(run, afterSeq, RESULT_PAGE))
          for (const row of page) {
            const ok = row.status === TaskStatus.Succeeded
            yield {
              taskId: row.id,
              name: row.name,
              ok,
              result: ok ? (row.resultCut ? row.result : JSON.parse(row.result ?? "null")) : row.lastError,
              cut: row.resultCut
            }
            afterSeq = row.seq
          }
          if (page.length < RESULT_PAGE) return
        }
      }
    })

    const start = (item: Item): void => {
      const { instance, task } = item
      runningItems.add(item)
      item.started = true
      if (item.acked) post(instance, { taskId: task.id, attempt: task.attempt, status: TaskStatus.Running })
      const succeed = (value: unknown) =>
        finish(item, { taskId: task.id, attempt: task.attempt, status: TaskStatus.Succeeded, result: JSON.stringify(value) ?? "null" })
      const fail = (error: unknown) =>
        finish(item, { taskId: task.id, attempt: task.attempt, status: TaskStatus.Failed, error: messageOf(error) })
      try {
        const job = options.jobs(instance.job)
        if (job === undefined) throw new Error(`job ${instance.job} is not known to worker ${options.id}`)
        const context = contextFor(item)
        const chosen = processorFor(job, task)
        let returned
        if ("reduce" in chosen) {
          returned = chosen.reduce(resultsOf(instance, Number(task.id.split(".")[0])), context)
        } else {
          const view: TaskView = { id: task.id, name: task.name, body: decodeBody(task.body), attempt: task.attempt, isRoot: task.kind === TaskKind.Root }
          returned = chosen.process(view, context)
        }
        if (Effect.isEffect(returned)) item.controller ??= new AbortController()
        const value = runReturned(returned, item.controller?.signal)
        if (value instanceof Promise) value.then(succeed, fail)
        else succeed(value)
      } catch (error) {
        fail(error)
      }
    }

    // Tasks that finish synchronously call pump again from inside start: the flag turns that into a loop.
    let pumping = false
    function pump(): void {
      if (pumping) return
      pumping = true
      try {
        while (runningItems.size < options.slots) {
          const item = queue.shift()
          if (item === undefined) return
          if (item.cancelled) {
            item.instance.held--
            continue
          }
          start(item)
        }
      } finally {
        pumping = false
      }
    }

    const deliver = (batch: TaskBatch): void => {
      const instance = instanceFor(batch.instanceId)
      if (instance.stopped) return
      instance.job = batch.job
      if (instance.paramsText !== batch.params) {
        instance.paramsText = batch.params
        instance.params = JSON.parse(batch.params)
      }
      instance.context = batch.context
      const items: Item[] = []
      for (const task of batch.tasks) {
        instance.held++
        items.push({ instance, task, cancelled: false, controller: undefined, mapChain: undefined, started: false, acked: false, done: false })
      }
      for (const item of items) queue.push(item)
      pump()
      // Tasks that already finished reported that instead; the rest confirm receipt (R-DISP-8).
      for (const item of items) {
        if (item.done) continue
        item.acked = true
        post(instance, { taskId: item.task.id, attempt: item.task.attempt, status: item.started ? TaskStatus.Running : TaskStatus.Received })
      }
    }

    const stop = (message: StopMessage): void => {
      const instance = instances.get(message.instanceId)
      if (instance === undefined) return
      const only = message.taskIds === null ? null : new Set(message.taskIds)
      const cancel = (item: Item) => {
        if (item.instance !== instance || (only !== null && !only.has(item.task.id))) return
        item.cancelled = true
        item.controller?.abort(message.reason)
      }
      for (const item of queue) cancel(item)
      for (const item of runningItems) cancel(item)
      if (only === null) {
        instance.stopped = true
        instance.outbox.clear()
        instances.delete(instance.id)
      }
    }

    const heartbeatAll = Effect.suspend(() =>
      Effect.forEach([...instances.values()], (instance) => Effect.ignore(instance.link.heartbeat(heartbeatOf(instance))), {
        concurrency: "unbounded",
        discard: true
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
      stats: () => ({ running: runningItems.size, queued: queue.size, completed })
    }
  })
