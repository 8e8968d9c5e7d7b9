import { Effect, Exit } from "effect"
import type { Job, Processor, Reducer, TaskContext, TaskView } from "../model/job.ts"
import type { DispatchedTask } from "../model/messages.ts"
import { TaskKind, TaskStatus } from "../model/status.ts"
import type { TaskBody, TaskResult } from "../model/task.ts"
import { decodeTaskError, taskfoldError, toTaskError, type TaskError } from "../model/task-error.ts"
import { utf8Length } from "../machine/collections.ts"
import type { StoredResult } from "../ports/task-store.ts"

/** How one attempt ended, ready to report: the result as JSON text, or the error (R-RETRY-3, R-RETRY-5). */
export type Settled = { readonly ok: true; readonly result: string } | { readonly ok: false; readonly error: TaskError }

/** What a processor running elsewhere (another thread) asks of its worker while it runs. */
export interface TaskCalls {
  readonly map: (items: ReadonlyArray<unknown>, name: string) => Promise<number>
  readonly appendContext: (entries: Record<string, unknown>) => Promise<boolean>
  /** A page of the run's terminal results after `afterSeq`, for reduce. */
  readonly readResults: (afterSeq: number, limit: number) => Promise<ReadonlyArray<StoredResult>>
}

/** One task as an executor gets it: everything a processor needs, as plain data that crosses a thread. */
export interface TaskRun {
  readonly instanceId: string
  readonly job: string
  readonly task: DispatchedTask
  /** JSON text of the instance's params. */
  readonly params: string
  readonly context: Record<string, unknown>
  /** Results longer than this fail their task (R-RETRY-3); undefined: no limit (a map job keeps none). */
  readonly maxResultBytes: number | undefined
}

/**
 * Runs processors somewhere other than the worker's own thread (Node's worker_threads, for one). The
 * worker keeps its slots, reports and heartbeats; the executor only runs the code and settles each run.
 */
export interface Executor {
  readonly run: (run: TaskRun, calls: TaskCalls, signal: AbortSignal) => Promise<Settled>
  readonly close?: () => Promise<void>
}

export const decodeBody = (body: TaskBody): unknown => (typeof body === "string" ? JSON.parse(body) : body)

export const encodeBody = (item: unknown): TaskBody =>
  item instanceof Uint8Array ? (item as Uint8Array<ArrayBuffer>) : (JSON.stringify(item) ?? "null")

/** What reduce sees of a stored terminal task (R-FIN-3). */
export const resultOf = (row: StoredResult): TaskResult => {
  if (row.status === TaskStatus.Succeeded) {
    const result = row.result === null || row.result === "null" ? null : JSON.parse(row.result)
    return { taskId: row.id, name: row.name, ok: true, result }
  }
  const error = row.lastError === null ? { tag: "Error", message: "failed" } : decodeTaskError(row.lastError)
  return { taskId: row.id, name: row.name, ok: false, result: error.message, error }
}

const RESULT_PAGE = 1_000

/**
 * A run's terminal results for reduce, read page by page in seq order (R-FIN-3). A plain iterator: a
 * result already read is handed out at the cost of one resolved promise, where an async generator takes several.
 */
class ResultStream implements AsyncIterator<TaskResult> {
  readonly #read: TaskCalls["readResults"]
  #page: ReadonlyArray<StoredResult> = []
  #at = 0
  #afterSeq = -1
  #last = false

  constructor(read: TaskCalls["readResults"]) {
    this.#read = read
  }

  next(): Promise<IteratorResult<TaskResult>> {
    const row = this.#page[this.#at]
    if (row !== undefined) {
      this.#at++
      return Promise.resolve({ done: false, value: resultOf(row) })
    }
    if (this.#last) return Promise.resolve({ done: true, value: undefined })
    return this.#read(this.#afterSeq, RESULT_PAGE).then((page) => {
      this.#page = page
      this.#at = 0
      this.#last = page.length < RESULT_PAGE
      if (page.length > 0) this.#afterSeq = (page[page.length - 1] as StoredResult).seq
      return this.next()
    })
  }
}

export const resultStream = (read: TaskCalls["readResults"]): AsyncIterable<TaskResult> => ({
  [Symbol.asyncIterator]: () => new ResultStream(read)
})

const processorOf = (job: Job, kind: DispatchedTask["kind"]): Processor =>
  kind === TaskKind.Root && job.kind === "broadcast" ? (job.preProcess ?? (() => null)) : job.process

const reducerOf = (job: Job): Reducer =>
  job.kind === "mapReduce" ? job.reduce : job.kind === "broadcast" ? (job.postProcess ?? countResults) : countResults

/** The JSON text of a result, checked against the limit before it leaves the worker (R-RETRY-3). */
export const settleValue = (value: unknown, maxResultBytes: number | undefined): Settled => {
  let text: string
  try {
    // No value is the one shared "null" (JSON.stringify makes a new string each time, and the store keeps every
    // result).
    text = value === null || value === undefined ? "null" : (JSON.stringify(value) ?? "null")
  } catch (error) {
    return {
      ok: false,
      error: taskfoldError("result-not-json", `the result cannot be stored as JSON: ${toTaskError(error).message}`)
    }
  }
  if (maxResultBytes !== undefined && text.length * 3 > maxResultBytes) {
    const size = utf8Length(text)
    if (size > maxResultBytes) {
      return {
        ok: false,
        error: taskfoldError(
          "result-too-large",
          `the result is ${size} bytes of UTF-8; maxResultBytes is ${maxResultBytes} (raise it in the job's config)`
        )
      }
    }
  }
  return { ok: true, result: text }
}

export const settleError = (error: unknown): Settled => ({ ok: false, error: toTaskError(error) })

const settleAsync = async (pending: Promise<unknown>, maxResultBytes: number | undefined): Promise<Settled> => {
  let value: unknown
  try {
    value = await pending
  } catch (error) {
    return settleError(error)
  }
  return settleValue(value, maxResultBytes)
}

/** An Effect runs with the task's signal, so a kill interrupts it; its failure keeps its cause (R-RETRY-5). */
/** How a processor's Effect is run: with the services its worker was started with (a test's clock among them). */
export type EffectRunner = (
  effect: Effect.Effect<unknown, unknown>,
  options: { readonly signal: AbortSignal }
) => Promise<Exit.Exit<unknown, unknown>>

const settleEffect = async (
  effect: Effect.Effect<unknown, unknown>,
  signal: AbortSignal,
  maxResultBytes: number | undefined,
  run: EffectRunner = Effect.runPromiseExit
): Promise<Settled> => {
  const exit = await run(effect, { signal })
  return Exit.isSuccess(exit) ? settleValue(exit.value, maxResultBytes) : settleError(exit.cause)
}

/** Calls the task's processor (or the final task's reducer); may throw. */
const invoke = (job: Job, kind: DispatchedTask["kind"], task: RunnableTask): unknown =>
  kind === TaskKind.Final
    ? reducerOf(job)(
        resultStream((afterSeq, limit) => task.readResults(afterSeq, limit)),
        task
      )
    : processorOf(job, kind)(task, task)

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  value !== null && typeof (value as PromiseLike<unknown> | undefined)?.then === "function"

/** A task as a processor sees it, and the one call reduce needs of its worker. */
export type RunnableTask = TaskView & TaskContext & Pick<TaskCalls, "readResults">

/**
 * Runs one task's processor (or the final task's reducer) and settles it: synchronously when the processor
 * returns a plain value, so a batch of quick tasks costs no promise each. Never throws.
 */
export const runTask = (
  job: Job,
  kind: DispatchedTask["kind"],
  task: RunnableTask,
  maxResultBytes: number | undefined,
  run?: EffectRunner
): Settled | Promise<Settled> => {
  let returned: unknown
  try {
    returned = invoke(job, kind, task)
  } catch (error) {
    return settleError(error)
  }
  if (Effect.isEffect(returned))
    return settleEffect(returned as Effect.Effect<unknown, unknown>, task.signal, maxResultBytes, run)
  if (isThenable(returned)) return settleAsync(Promise.resolve(returned), maxResultBytes)
  return settleValue(returned, maxResultBytes)
}

/** Waits for a processor's promise and hands on how it settled: one async frame per task, no closure. */
const settleInto = async (
  pending: PromiseLike<unknown>,
  maxResultBytes: number | undefined,
  sink: SettleSink
): Promise<void> => {
  let value: unknown
  try {
    value = await pending
  } catch (error) {
    return sink.settle(settleError(error))
  }
  sink.settle(settleValue(value, maxResultBytes))
}

/** Where runTaskInto hands how a task settled (the worker's task object itself: no closure per task). */
export interface SettleSink {
  readonly settle: (settled: Settled) => void
}

/** runTask for the worker's own slots: `sink` gets how the task settled, at once for a plain value. */
export const runTaskInto = (
  job: Job,
  kind: DispatchedTask["kind"],
  task: RunnableTask,
  maxResultBytes: number | undefined,
  sink: SettleSink,
  run?: EffectRunner
): void => {
  let returned: unknown
  try {
    returned = invoke(job, kind, task)
  } catch (error) {
    return sink.settle(settleError(error))
  }
  if (Effect.isEffect(returned))
    void settleEffect(returned as Effect.Effect<unknown, unknown>, task.signal, maxResultBytes, run).then((settled) =>
      sink.settle(settled)
    )
  else if (isThenable(returned)) void settleInto(returned, maxResultBytes, sink)
  else sink.settle(settleValue(returned, maxResultBytes))
}

/** The broadcast job's default postProcess: succeeded iff no task failed, with the counts (R-BC-2). */
export const countResults: Reducer = async (results) => {
  let succeeded = 0
  let failed = 0
  for await (const result of results) {
    if (result.ok) succeeded++
    else failed++
  }
  const text = `succeeded: ${succeeded}, failed: ${failed}`
  if (failed > 0) throw new Error(text)
  return text
}
