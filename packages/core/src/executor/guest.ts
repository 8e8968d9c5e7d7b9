import { Effect, Scope } from "effect"
import type { Job, TaskContext, TaskView } from "../model/job.ts"
import { TaskKind } from "../model/status.ts"
import { toTaskError } from "../model/task-error.ts"
import type { StoredResult } from "../ports/task-store.ts"
import { runTask, type Settled, type TaskRun } from "../worker/execute.ts"
import { makeJobServices } from "../worker/job-services.ts"
import { fromCallError, Outbox, type CallMethod, type FromGuest, type GuestPort } from "./protocol.ts"

/** The jobs a guest runs, by name (a Map fits). */
export interface JobLookup {
  readonly get: (name: string) => Job | undefined
}

/** The last params parsed, per instance: every task of a batch shares one parse, as in the worker itself. */
const paramsParser = () => {
  const parsed = new Map<string, { text: string; value: unknown }>()
  return (run: TaskRun): unknown => {
    const cached = parsed.get(run.instanceId)
    if (cached !== undefined && cached.text === run.params) return cached.value
    const value: unknown = JSON.parse(run.params)
    if (parsed.size >= 64) parsed.delete(parsed.keys().next().value as string)
    parsed.set(run.instanceId, { text: run.params, value })
    return value
  }
}

type Call = <A>(run: number, method: CallMethod, args: ReadonlyArray<unknown>) => Promise<A>

/** A task as its processor sees it on the guest: the same view and context as on the worker's own thread. */
class GuestTask implements TaskView, TaskContext {
  readonly id: string
  readonly name: string
  readonly body: unknown
  readonly attempt: number
  readonly isRoot: boolean
  readonly instanceId: string
  readonly params: unknown
  readonly context: Readonly<Record<string, unknown>>
  readonly #run: number
  readonly #call: Call
  readonly #controller: AbortController

  constructor(run: number, task: TaskRun, body: unknown, params: unknown, call: Call, controller: AbortController) {
    this.id = task.task.id
    this.name = task.task.name
    this.body = body
    this.attempt = task.task.attempt
    this.isRoot = task.task.kind === TaskKind.Root
    this.instanceId = task.instanceId
    this.params = params
    this.context = task.context
    this.#run = run
    this.#call = call
    this.#controller = controller
  }

  get signal(): AbortSignal {
    return this.#controller.signal
  }
  map(items: ReadonlyArray<unknown>, name: string): Promise<number> {
    return this.#call(this.#run, "map", [items, name])
  }
  appendContext(entries: Record<string, unknown>): Promise<boolean> {
    return this.#call(this.#run, "appendContext", [entries])
  }
  readResults(afterSeq: number, limit: number): Promise<ReadonlyArray<StoredResult>> {
    return this.#call(this.#run, "readResults", [afterSeq, limit])
  }
}

/**
 * Serves the runs that arrive on `port` (a worker thread's, a Web Worker's): runs each with core's runTask
 * and turns its calls (map, appendContext, readResults) into messages the host answers. A lookup that
 * fails to load fails every run with that reason rather than ending the guest, which would be replaced
 * by one failing the same way, over and over.
 */
export const serveExecutorPort = (port: GuestPort, jobs: JobLookup | Promise<JobLookup>): void => {
  /** A message that cannot be cloned (an error object with a function in it) goes as plain text, alone. */
  const post = (messages: FromGuest[]): void => {
    try {
      port.postMessage(messages)
    } catch {
      for (const message of messages) {
        try {
          port.postMessage([message])
        } catch (error) {
          if (message.type !== "settled") continue
          const text = message.settled.ok
            ? "the result"
            : `the error ${String(message.settled.error.tag)}: ${String(message.settled.error.message)}`
          const stuck = { tag: "Error", message: `${text} cannot leave the worker thread: ${String(error)}` }
          port.postMessage([{ type: "settled", id: message.id, settled: { ok: false, error: stuck } }])
        }
      }
    }
  }
  const outbox = new Outbox<FromGuest>(post)
  const loaded: Promise<JobLookup | Error> = Promise.resolve(jobs).catch((error: unknown) =>
    error instanceof Error ? error : new Error(String(error))
  )
  void loaded.then(() => outbox.push({ type: "ready" }))

  /** Calls to the host waiting for their answer, by call number. */
  const waiting = new Map<number, { resolve: (value: never) => void; reject: (error: Error) => void }>()
  let nextCall = 0

  /** Posted at once, not batched: a value that cannot cross (a function among map items) fails only its own call. */
  const call: Call = <A>(id: number, method: CallMethod, args: ReadonlyArray<unknown>) =>
    new Promise<A>((resolve, reject) => {
      const number = nextCall++
      try {
        outbox.flush()
        port.postMessage([{ type: "call", id, call: number, method, args } as FromGuest])
      } catch (error) {
        const message = `${method}: the arguments cannot be sent to the worker: ${toTaskError(error).message}`
        reject(Object.assign(new Error(message), { name: method === "map" ? "MapError" : "Error" }))
        return
      }
      waiting.set(number, { resolve: resolve as (value: never) => void, reject })
    })

  const paramsOf = paramsParser()
  // A thread is a worker: each job's layer is built once here, and lives as long as the thread.
  const jobServices = makeJobServices(Effect.runSync(Scope.make()), Effect.runPromiseExit)
  /** Each run's abort controller, from the moment the run arrives (an abort may come before the jobs are loaded). */
  const running = new Map<number, AbortController>()

  const settle = (id: number, settled: Settled): void => {
    running.delete(id)
    outbox.push({ type: "settled", id, settled })
  }

  const start = async (id: number, run: TaskRun, controller: AbortController): Promise<void> => {
    const table = await loaded
    if (table instanceof Error)
      return settle(id, {
        ok: false,
        error: { tag: "JobLoadError", message: `a worker thread cannot load its jobs: ${table.message}` }
      })
    const job = table.get(run.job)
    if (job === undefined)
      return settle(id, {
        ok: false,
        error: { tag: "UnknownJob", message: `job ${run.job} is not among the worker thread's jobs` }
      })
    let task: GuestTask
    try {
      const body =
        run.task.kind === TaskKind.Final
          ? undefined
          : typeof run.task.body === "string"
            ? JSON.parse(run.task.body)
            : run.task.body
      task = new GuestTask(id, run, body, paramsOf(run), call, controller)
    } catch (error) {
      return settle(id, { ok: false, error: toTaskError(error) })
    }
    const settled = runTask(job, run.task.kind, task, run.maxResultBytes, jobServices.runnerOf(job))
    settle(id, settled instanceof Promise ? await settled : settled)
  }

  port.onMessage((messages) => {
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
        else pending.reject(fromCallError(message.error))
      }
    }
  })
}
