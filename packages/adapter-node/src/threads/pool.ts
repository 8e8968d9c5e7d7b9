import { ConfigError, taskfoldError, type Executor, type Settled, type TaskCalls, type TaskRun } from "@taskfold/core"
import { Effect, type Scope } from "effect"
import { availableParallelism } from "node:os"
import { resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
import { Outbox, type CallError, type FromThread, type ThreadData, type ToThread } from "./protocol.ts"

export interface ThreadPoolOptions {
  /** Job modules (or folders of them), as paths or file URLs; every thread imports them all. */
  readonly modules: ReadonlyArray<string>
  /** Threads, all started at once (they load the modules side by side). Default: os.availableParallelism(). */
  readonly threads?: number
  /**
   * Move Uint8Array bodies to the thread instead of copying them. Only for bodies nothing else in this
   * thread holds, such as those a worker process decoded from a request; an in-process tracker keeps its
   * own, and a moved buffer is empty where it was. Default false.
   */
  readonly transferBodies?: boolean
  /** Send what the threads print on stdout to this process's stderr (when stdout carries results, as in `taskfold run`). */
  readonly stdoutToStderr?: boolean
}

export interface ThreadPool extends Executor {
  readonly close: () => Promise<void>
  /** Resolves once every thread has loaded the modules (or failed to): a worker that registers after it gets going at once. */
  readonly ready: () => Promise<void>
  /** Threads alive now and tasks running on them. */
  readonly stats: () => { readonly threads: number; readonly running: number }
}

export const MAX_THREADS = 1_024

interface Run {
  readonly calls: TaskCalls
  readonly resolve: (settled: Settled) => void
  readonly signal: AbortSignal
  readonly onAbort: () => void
}

interface PoolThread {
  readonly worker: Worker
  readonly outbox: Outbox<ToThread>
  /** Runs this thread has and has not settled yet. */
  readonly runs: Map<number, Run>
  /** Why it stopped, if an 'error' event said so before 'exit'. */
  crash: string | undefined
  /** It loaded its modules; only such a thread is replaced at once when it stops. */
  ready: boolean
  readonly loaded: Promise<void>
  readonly markLoaded: () => void
  closing: boolean
}

const entry = new URL("./thread.ts", import.meta.url)

const invalid = (message: string) => new ConfigError({ reason: "invalid-config", message: `threadPool: ${message}` })

const modulePath = (given: unknown): string => {
  if (typeof given !== "string" || given.length === 0) throw invalid(`modules must be paths or file URLs of job modules, not ${JSON.stringify(given)}`)
  return given.startsWith("file:") ? fileURLToPath(given) : resolve(given)
}

const callError = (error: unknown): CallError => {
  if (error instanceof Error) {
    const reason = (error as { reason?: unknown }).reason
    return { name: error.name, message: error.message, ...(typeof reason === "string" ? { reason } : {}) }
  }
  return { name: "Error", message: String(error) }
}

/** A body's buffer, if it can move to the thread whole: the view covers all of it, and it is not shared. */
const movable = (body: TaskRun["task"]["body"]): ArrayBuffer | undefined =>
  typeof body !== "string" && body.buffer instanceof ArrayBuffer && body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body.buffer : undefined

/**
 * An Executor that runs tasks on Node worker threads, so a processor that keeps its thread busy never
 * holds up the worker's reports, heartbeats and receipts, nor a tracker in the same process (R-DISP-10).
 * Each new task goes to the least busy thread; a thread runs many tasks at once (async processors). A
 * thread that stops (process.exit in a processor, an uncaught error) fails the tasks it was running and
 * is replaced. Idle threads do not keep the process alive; close() ends them.
 */
export const threadPool = (options: ThreadPoolOptions): ThreadPool => {
  if (options === null || typeof options !== "object") throw invalid("options must be an object")
  const max = options.threads ?? availableParallelism()
  if (!Number.isInteger(max) || max < 1 || max > MAX_THREADS) throw invalid(`threads must be a whole number from 1 to ${MAX_THREADS}, not ${JSON.stringify(max)}`)
  if (!Array.isArray(options.modules) || options.modules.length === 0) throw invalid("modules must name at least one job module")
  const data: ThreadData = { modules: options.modules.map(modulePath) }
  const threads: PoolThread[] = []
  let nextRun = 0
  let closed = false

  const failure = (reason: string, message: string): Settled => ({ ok: false, error: taskfoldError(reason, message) })

  /** Settles a run of `thread` and lets an idle thread go from the event loop's reckoning. */
  const settle = (thread: PoolThread, id: number, settled: Settled): void => {
    const run = thread.runs.get(id)
    if (run === undefined) return
    thread.runs.delete(id)
    run.signal.removeEventListener("abort", run.onAbort)
    if (thread.runs.size === 0) thread.worker.unref()
    run.resolve(settled)
  }

  /** A call of a task running in the thread, made here, on the worker's thread; the answer goes back. */
  const answer = (thread: PoolThread, message: Extract<FromThread, { type: "call" }>): void => {
    const run = thread.runs.get(message.id)
    const reply = (value: ToThread) => {
      if (!thread.closing && threads.includes(thread)) thread.outbox.push(value)
    }
    if (run === undefined) return reply({ type: "answer", call: message.call, ok: false, error: { name: "Error", message: "the task has ended" } })
    let pending: Promise<number | boolean | ReadonlyArray<unknown>>
    try {
      pending =
        message.method === "map"
          ? run.calls.map(...message.args)
          : message.method === "appendContext"
            ? run.calls.appendContext(...message.args)
            : run.calls.readResults(...message.args)
    } catch (error) {
      pending = Promise.reject(error)
    }
    pending.then(
      (value) => reply({ type: "answer", call: message.call, ok: true, value: value as never }),
      (error: unknown) => reply({ type: "answer", call: message.call, ok: false, error: callError(error) })
    )
  }

  /**
   * Posts a thread's messages at once. If they cannot go (a buffer to move that is already gone), each goes
   * alone and copied, and a run that still cannot go fails by itself: nothing is thrown where no one catches it.
   */
  const post = (thread: PoolThread, messages: ToThread[], transfer: ArrayBuffer[]): void => {
    try {
      thread.worker.postMessage(messages, transfer)
      return
    } catch {
      // One at a time below.
    }
    for (const message of messages) {
      try {
        thread.worker.postMessage([message])
      } catch (error) {
        if (message.type === "run") settle(thread, message.id, failure("not-sent", `the task cannot be sent to a worker thread: ${String(error)}`))
      }
    }
  }

  const spawn = (): PoolThread => {
    const worker = new Worker(entry, { workerData: data, stdout: options.stdoutToStderr === true })
    if (options.stdoutToStderr === true) worker.stdout.pipe(process.stderr, { end: false })
    let markLoaded: () => void = () => {}
    const loaded = new Promise<void>((resolve) => (markLoaded = resolve))
    const thread: PoolThread = {
      worker,
      loaded,
      markLoaded,
      outbox: new Outbox((messages, transfer) => post(thread, messages, transfer)),
      runs: new Map(),
      crash: undefined,
      ready: false,
      closing: false
    }
    worker.unref()
    worker.on("message", (messages: ReadonlyArray<FromThread>) => {
      for (const message of messages) {
        if (message.type === "settled") settle(thread, message.id, message.settled)
        else if (message.type === "call") answer(thread, message)
        else {
          thread.ready = true
          thread.markLoaded()
        }
      }
    })
    worker.on("error", (error) => {
      thread.crash = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
    })
    worker.on("exit", (code) => {
      thread.markLoaded()
      const at = threads.indexOf(thread)
      if (at >= 0) threads.splice(at, 1)
      if (thread.closing) return
      const why = thread.crash ?? `it exited with code ${code}`
      for (const id of [...thread.runs.keys()]) {
        settle(thread, id, failure("thread-crashed", `the worker thread running this task stopped (${why}); the tasks running on that thread failed with it`))
      }
      // A thread that dies while loading is replaced by the next task, not here: no loop of threads dying at start.
      if (thread.ready && !closed) spawn()
    })
    threads.push(thread)
    return thread
  }

  /** The least busy thread; a new one while every thread is busy and one is missing. */
  const pick = (): PoolThread => {
    let best: PoolThread | undefined
    for (const thread of threads) if (best === undefined || thread.runs.size < best.runs.size) best = thread
    return best !== undefined && (best.runs.size === 0 || threads.length >= max) ? best : spawn()
  }

  for (let i = 0; i < max; i++) spawn()

  return {
    run: (run, calls, signal) => {
      if (closed) return Promise.resolve(failure("pool-closed", "the thread pool is closed"))
      const thread = pick()
      const id = nextRun++
      return new Promise<Settled>((resolveRun) => {
        const onAbort = () => thread.outbox.push({ type: "abort", id, reason: String(signal.reason ?? "aborted") })
        thread.runs.set(id, { calls, resolve: resolveRun, signal, onAbort })
        if (thread.runs.size === 1) thread.worker.ref()
        thread.outbox.push({ type: "run", id, run }, options.transferBodies === true ? movable(run.task.body) : undefined)
        if (signal.aborted) onAbort()
        else signal.addEventListener("abort", onAbort, { once: true })
      })
    },
    close: async () => {
      closed = true
      const stopping = threads.splice(0)
      for (const thread of stopping) {
        thread.closing = true
        for (const id of [...thread.runs.keys()]) settle(thread, id, failure("pool-closed", "the thread pool closed while the task ran"))
      }
      await Promise.all(stopping.map((thread) => thread.worker.terminate()))
    },
    ready: () => Promise.all(threads.map((thread) => thread.loaded)).then(() => undefined),
    stats: () => ({ threads: threads.length, running: threads.reduce((sum, thread) => sum + thread.runs.size, 0) })
  }
}

/**
 * A pool that lives as long as the scope, its threads ready when this succeeds; none for `threads` 0 (the
 * processors run in the worker's own thread).
 */
export const scopedThreadPool = (threads: number, options: Omit<ThreadPoolOptions, "threads">): Effect.Effect<ThreadPool | undefined, never, Scope.Scope> =>
  threads === 0
    ? Effect.succeed(undefined)
    : Effect.acquireRelease(
        Effect.suspend(() => {
          const pool = threadPool({ ...options, threads })
          return Effect.as(Effect.promise(pool.ready), pool)
        }),
        (pool) => Effect.promise(() => pool.close())
      )
