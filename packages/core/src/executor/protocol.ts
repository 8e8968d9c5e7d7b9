import type { StoredResult } from "../ports/task-store.ts"
import type { Settled, TaskRun } from "../worker/execute.ts"

/**
 * The messages between an executor's host (the worker's thread) and its guests (worker threads, Web
 * Workers: whatever runs processors behind a postMessage port). Messages go in arrays, one postMessage
 * per turn and direction: a batch of short tasks costs a few messages, not a few per task.
 */

/**
 * One end of a channel that carries structured-clone data: a worker thread's port, a Web Worker, a
 * MessagePort. `transfer` lists buffers to move rather than copy.
 */
export interface MessagePortLike<In, Out> {
  postMessage(message: Out, transfer?: ArrayBuffer[]): void
  /** Calls `listener` with each message that arrives, from now on. */
  onMessage(listener: (message: In) => void): void
}

/** An error that crosses the port as data (structured clone drops an Error's own fields). */
export interface CallError {
  readonly name: string
  readonly message: string
  readonly reason?: string
}

export type CallMethod = "map" | "appendContext" | "readResults"

/** Host → guest. `id` is a run's number on that port; `call` a call's number, which its answer repeats. */
export type ToGuest =
  | { readonly type: "run"; readonly id: number; readonly run: TaskRun }
  | { readonly type: "abort"; readonly id: number; readonly reason: string }
  | {
      readonly type: "answer"
      readonly call: number
      readonly ok: true
      readonly value: number | boolean | ReadonlyArray<StoredResult>
    }
  | { readonly type: "answer"; readonly call: number; readonly ok: false; readonly error: CallError }

/** Guest → host. "ready" comes once the guest's jobs are loaded (or failed to). */
export type FromGuest =
  | { readonly type: "ready" }
  | { readonly type: "settled"; readonly id: number; readonly settled: Settled }
  | {
      readonly type: "call"
      readonly id: number
      readonly call: number
      readonly method: "map"
      readonly args: readonly [ReadonlyArray<unknown>, string]
    }
  | {
      readonly type: "call"
      readonly id: number
      readonly call: number
      readonly method: "appendContext"
      readonly args: readonly [Record<string, unknown>]
    }
  | {
      readonly type: "call"
      readonly id: number
      readonly call: number
      readonly method: "readResults"
      readonly args: readonly [number, number]
    }

/** The host's end of a guest's port. */
export type HostPort = MessagePortLike<ReadonlyArray<FromGuest>, ReadonlyArray<ToGuest>>
/** The guest's end of its port to the host. */
export type GuestPort = MessagePortLike<ReadonlyArray<ToGuest>, ReadonlyArray<FromGuest>>

/** What a call's rejection carries across: its name, message and reason, which a processor may check. */
export const toCallError = (error: unknown): CallError => {
  if (error instanceof Error) {
    const reason = (error as { reason?: unknown }).reason
    return { name: error.name, message: error.message, ...(typeof reason === "string" ? { reason } : {}) }
  }
  return { name: "Error", message: String(error) }
}

export const fromCallError = (error: CallError): Error =>
  Object.assign(new Error(error.message), {
    name: error.name,
    ...(error.reason === undefined ? {} : { reason: error.reason })
  })

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
