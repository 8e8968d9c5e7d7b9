/**
 * The entry of one pool thread (Node runs this .ts file by type stripping): imports the job modules,
 * runs each task it is sent with core's runTask, and turns the task's calls to the tracker (map,
 * appendContext, readResults) into messages the main thread answers.
 */
import { runTask, TaskKind, toTaskError, type Job, type Settled, type StoredResult, type TaskContext, type TaskRun, type TaskView } from "@taskfold/core"
import { parentPort, workerData } from "node:worker_threads"
import { loadJobs } from "../jobs.ts"
import { Outbox, type CallError, type CallMethod, type FromThread, type ThreadData, type ToThread } from "./protocol.ts"

const port = parentPort
if (port === null) throw new Error("threads/thread.ts is the entry of a worker thread; it does not run on its own")

const data = workerData as ThreadData
/** A message that cannot be cloned (an error object with a function in it) goes as plain text, alone. */
const post = (messages: FromThread[]): void => {
  try {
    port.postMessage(messages)
  } catch {
    for (const message of messages) {
      try {
        port.postMessage([message])
      } catch (error) {
        if (message.type !== "settled") continue
        const text = message.settled.ok ? "the result" : `the error ${String(message.settled.error.tag)}: ${String(message.settled.error.message)}`
        port.postMessage([{ type: "settled", id: message.id, settled: { ok: false, error: { tag: "Error", message: `${text} cannot leave the worker thread: ${String(error)}` } } }])
      }
    }
  }
}
const outbox = new Outbox<FromThread>(post)

// A module that fails to load fails every task sent here with that reason, rather than crashing the
// thread (a crash would be replaced by a thread failing the same way, over and over).
const jobs: Promise<ReadonlyMap<string, Job> | Error> = loadJobs(data.modules).catch((error: unknown) =>
  error instanceof Error ? error : new Error(String(error))
)
void jobs.then(() => outbox.push({ type: "ready" }))

/** Calls to the main thread waiting for their answer, by call number. */
const waiting = new Map<number, { resolve: (value: never) => void; reject: (error: Error) => void }>()
let nextCall = 0

const callError = (error: CallError): Error => Object.assign(new Error(error.message), { name: error.name, ...(error.reason === undefined ? {} : { reason: error.reason }) })

/** Posted at once, not batched: a value that cannot cross (a function among map items) fails only its own call. */
const call = <A>(id: number, method: CallMethod, args: ReadonlyArray<unknown>): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    const number = nextCall++
    try {
      outbox.flush()
      port.postMessage([{ type: "call", id, call: number, method, args } as FromThread])
    } catch (error) {
      reject(Object.assign(new Error(`${method}: the arguments cannot be sent to the worker: ${toTaskError(error).message}`), { name: method === "map" ? "MapError" : "Error" }))
      return
    }
    waiting.set(number, { resolve: resolve as (value: never) => void, reject })
  })

/** The last params parsed, per instance: every task of a batch shares one parse, as in the worker itself. */
const paramsCache = new Map<string, { text: string; value: unknown }>()
const paramsOf = (run: TaskRun): unknown => {
  const cached = paramsCache.get(run.instanceId)
  if (cached !== undefined && cached.text === run.params) return cached.value
  const value: unknown = JSON.parse(run.params)
  if (paramsCache.size >= 64) paramsCache.delete(paramsCache.keys().next().value as string)
  paramsCache.set(run.instanceId, { text: run.params, value })
  return value
}

/** A task as its processor sees it here: the same view and context as on the worker's own thread. */
class ThreadTask implements TaskView, TaskContext {
  readonly id: string
  readonly name: string
  readonly body: unknown
  readonly attempt: number
  readonly isRoot: boolean
  readonly instanceId: string
  readonly params: unknown
  readonly context: Readonly<Record<string, unknown>>
  readonly #run: number
  readonly #controller: AbortController

  constructor(run: number, task: TaskRun, body: unknown, params: unknown, controller: AbortController) {
    this.id = task.task.id
    this.name = task.task.name
    this.body = body
    this.attempt = task.task.attempt
    this.isRoot = task.task.kind === TaskKind.Root
    this.instanceId = task.instanceId
    this.params = params
    this.context = task.context
    this.#run = run
    this.#controller = controller
  }

  get signal(): AbortSignal {
    return this.#controller.signal
  }
  map(items: ReadonlyArray<unknown>, name: string): Promise<number> {
    return call(this.#run, "map", [items, name])
  }
  appendContext(entries: Record<string, unknown>): Promise<boolean> {
    return call(this.#run, "appendContext", [entries])
  }
  readResults(afterSeq: number, limit: number): Promise<ReadonlyArray<StoredResult>> {
    return call(this.#run, "readResults", [afterSeq, limit])
  }
}

/** Each run's abort controller, from the moment the run arrives (an abort may come before its modules are loaded). */
const running = new Map<number, AbortController>()

const settle = (id: number, settled: Settled): void => {
  running.delete(id)
  outbox.push({ type: "settled", id, settled })
}

const start = async (id: number, run: TaskRun, controller: AbortController): Promise<void> => {
  const table = await jobs
  if (table instanceof Error) return settle(id, { ok: false, error: { tag: "JobLoadError", message: `a worker thread cannot load its job modules: ${table.message}` } })
  const job = table.get(run.job)
  if (job === undefined) return settle(id, { ok: false, error: { tag: "UnknownJob", message: `job ${run.job} is not exported by the worker threads' modules` } })
  let task: ThreadTask
  try {
    const body = run.task.kind === TaskKind.Final ? undefined : typeof run.task.body === "string" ? JSON.parse(run.task.body) : run.task.body
    task = new ThreadTask(id, run, body, paramsOf(run), controller)
  } catch (error) {
    return settle(id, { ok: false, error: toTaskError(error) })
  }
  const settled = runTask(job, run.task.kind, task, run.maxResultBytes)
  settle(id, settled instanceof Promise ? await settled : settled)
}

port.on("message", (messages: ReadonlyArray<ToThread>) => {
  for (const message of messages) {
    if (message.type === "run") {
      const controller = new AbortController()
      running.set(message.id, controller)
      void start(message.id, message.run, controller)
    } else if (message.type === "abort") running.get(message.id)?.abort(message.reason)
    else {
      const pending = waiting.get(message.call)
      if (pending === undefined) continue
      waiting.delete(message.call)
      if (message.ok) pending.resolve(message.value as never)
      else pending.reject(callError(message.error))
    }
  }
})
