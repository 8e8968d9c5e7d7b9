import { ConfigError } from "@taskfold/core"
import { portExecutor, type Executor, type HostPort, type TaskRun } from "@taskfold/core/adapter"
import { Effect, type Scope } from "effect"
import { availableParallelism } from "node:os"
import { resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
import type { ThreadData } from "./thread.ts"

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
  /**
   * Send what the threads print on stdout to this process's stderr
   * (when stdout carries results, as in `taskfold run`).
   */
  readonly stdoutToStderr?: boolean
}

export interface ThreadPool extends Executor {
  readonly close: () => Promise<void>
  /**
   * Resolves once every thread has loaded the modules (or failed to):
   * a worker that registers after it gets going at once.
   */
  readonly ready: () => Promise<void>
  /** Threads alive now and tasks running on them. */
  readonly stats: () => { readonly threads: number; readonly running: number }
}

export const MAX_THREADS = 1_024

/** A thread's port as the executor holds it, with the thread to ref, unref and end. */
interface ThreadPort extends HostPort {
  readonly worker: Worker
}

// Built, this module is .js and so is its thread entry.
const entry = new URL(import.meta.url.endsWith(".ts") ? "./thread.ts" : "./thread.js", import.meta.url)

const invalid = (message: string) => new ConfigError({ reason: "invalid-config", message: `threadPool: ${message}` })

const modulePath = (given: unknown): string => {
  if (typeof given !== "string" || given.length === 0)
    throw invalid(`modules must be paths or file URLs of job modules, not ${JSON.stringify(given)}`)
  return given.startsWith("file:") ? fileURLToPath(given) : resolve(given)
}

/** A body's buffer, if it can move to the thread whole: the view covers all of it, and it is not shared. */
const movable = (run: TaskRun): ArrayBuffer | undefined => {
  const body = run.task.body
  return typeof body !== "string" &&
    body.buffer instanceof ArrayBuffer &&
    body.byteOffset === 0 &&
    body.byteLength === body.buffer.byteLength
    ? body.buffer
    : undefined
}

/**
 * An Executor that runs tasks on Node worker threads, so a processor that keeps its thread busy never
 * holds up the worker's reports, heartbeats and receipts, nor a tracker in the same process (R-DISP-10).
 * Core's portExecutor spreads the tasks over the threads; this starts them, reports the ones that stop
 * (process.exit in a processor, an uncaught error) so their tasks fail and they are replaced, and lets
 * idle threads not keep the process alive. close() ends them.
 */
export const threadPool = (options: ThreadPoolOptions): ThreadPool => {
  if (options === null || typeof options !== "object") throw invalid("options must be an object")
  const max = options.threads ?? availableParallelism()
  if (!Number.isInteger(max) || max < 1 || max > MAX_THREADS)
    throw invalid(`threads must be a whole number from 1 to ${MAX_THREADS}, not ${JSON.stringify(max)}`)
  if (!Array.isArray(options.modules) || options.modules.length === 0)
    throw invalid("modules must name at least one job module")
  const data: ThreadData = { modules: options.modules.map(modulePath) }

  const spawn = (): ThreadPort => {
    const worker = new Worker(entry, { workerData: data, stdout: options.stdoutToStderr === true })
    if (options.stdoutToStderr === true) worker.stdout.pipe(process.stderr, { end: false })
    worker.unref()
    const port: ThreadPort = {
      worker,
      postMessage: (messages, transfer) => worker.postMessage(messages, transfer),
      onMessage: (listener) => worker.on("message", listener)
    }
    // An 'error' event says why before 'exit' comes.
    let crash: string | undefined
    worker.on("error", (error) => (crash = error instanceof Error ? `${error.name}: ${error.message}` : String(error)))
    worker.on("exit", (code) => executor.portLost(port, crash ?? `it exited with code ${code}`))
    return port
  }

  const executor = portExecutor<ThreadPort>({
    ports: max,
    open: spawn,
    close: (port) => port.worker.terminate(),
    onBusy: (port, busy) => (busy ? port.worker.ref() : port.worker.unref()),
    ...(options.transferBodies === true ? { transferOf: movable } : {})
  })
  return {
    run: executor.run,
    close: executor.close,
    ready: executor.ready,
    stats: () => {
      const { ports, running } = executor.stats()
      return { threads: ports, running }
    }
  }
}

/**
 * A pool that lives as long as the scope, its threads ready when this succeeds; none for `threads` 0 (the
 * processors run in the worker's own thread).
 */
export const scopedThreadPool = (
  threads: number,
  options: Omit<ThreadPoolOptions, "threads">
): Effect.Effect<ThreadPool | undefined, never, Scope.Scope> =>
  threads === 0
    ? Effect.succeed(undefined)
    : Effect.acquireRelease(
        Effect.suspend(() => {
          const pool = threadPool({ ...options, threads })
          return Effect.as(Effect.promise(pool.ready), pool)
        }),
        (pool) => Effect.promise(() => pool.close())
      )
