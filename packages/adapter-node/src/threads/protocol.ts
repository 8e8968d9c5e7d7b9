import type { Settled, StoredResult, TaskRun } from "@taskfold/core"

/**
 * The messages between a thread pool and its threads. Messages go in arrays, one postMessage per turn
 * of the event loop and direction: a batch of short tasks costs a few messages, not a few per task.
 */

/** An error that crosses the thread boundary as data (structured clone drops an Error's own fields). */
export interface CallError {
  readonly name: string
  readonly message: string
  readonly reason?: string
}

export type CallMethod = "map" | "appendContext" | "readResults"

/** Main thread → thread. */
export type ToThread =
  | { readonly type: "run"; readonly id: number; readonly run: TaskRun }
  | { readonly type: "abort"; readonly id: number; readonly reason: string }
  | { readonly type: "answer"; readonly call: number; readonly ok: true; readonly value: number | boolean | ReadonlyArray<StoredResult> }
  | { readonly type: "answer"; readonly call: number; readonly ok: false; readonly error: CallError }

/** Thread → main thread. `id` is the run the message belongs to; "ready" comes once the job modules are loaded (or failed to). */
export type FromThread =
  | { readonly type: "ready" }
  | { readonly type: "settled"; readonly id: number; readonly settled: Settled }
  | { readonly type: "call"; readonly id: number; readonly call: number; readonly method: "map"; readonly args: readonly [ReadonlyArray<unknown>, string] }
  | { readonly type: "call"; readonly id: number; readonly call: number; readonly method: "appendContext"; readonly args: readonly [Record<string, unknown>] }
  | { readonly type: "call"; readonly id: number; readonly call: number; readonly method: "readResults"; readonly args: readonly [number, number] }

/** What a thread is started with. */
export interface ThreadData {
  /** Absolute paths of the job modules (or folders of them), as loadJobs takes them. */
  readonly modules: ReadonlyArray<string>
}

/**
 * Collects messages for one port and posts them together at the end of the current turn. `transfer`
 * lists buffers to move rather than copy.
 */
export class Outbox<M> {
  #messages: M[] = []
  #transfer: ArrayBuffer[] = []
  readonly #post: (messages: M[], transfer: ArrayBuffer[]) => void

  constructor(post: (messages: M[], transfer: ArrayBuffer[]) => void) {
    this.#post = post
  }

  push(message: M, transfer?: ArrayBuffer): void {
    if (this.#messages.length === 0) queueMicrotask(() => this.flush())
    this.#messages.push(message)
    // A buffer listed twice makes postMessage throw.
    if (transfer !== undefined && !this.#transfer.includes(transfer)) this.#transfer.push(transfer)
  }

  flush(): void {
    if (this.#messages.length === 0) return
    const messages = this.#messages
    const transfer = this.#transfer
    this.#messages = []
    this.#transfer = []
    this.#post(messages, transfer)
  }
}
