/**
 * The messages between a page and its Web Workers. Every message is checked on receipt: the envelope
 * by the schemas below, the payload by the core's own message schemas (R-WIRE-1). Values that cross
 * are encoded by their schema first, so tagged errors keep their class and reason on the other side.
 */
import { Schema } from "effect"
import { RejectedError, StoreError, TransportError } from "../model/errors.ts"
import {
  ContextAppend,
  Heartbeat,
  MapRequest,
  ReportBatch,
  ReportsReply,
  StopMessage,
  TaskBatch
} from "../model/messages.ts"
import { ResultsPage } from "../model/store.ts"
import type { TaskBody } from "../model/task.ts"

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const Id = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(256))

/** What a link call may fail with on the other side of the channel. */
export const LinkError = Schema.Union([RejectedError, StoreError, TransportError])
export type LinkError = typeof LinkError.Type

export const ReadResultsRequest = Schema.Struct({
  instanceId: Id,
  run: Count,
  afterSeq: Schema.Int.check(Schema.isGreaterThanOrEqualTo(-1)),
  limit: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100_000 }))
})

/**
 * The calls a worker makes to the tracker: the request schema (checked by the page)
 * and the answer's (checked by the worker).
 */
export const calls = {
  report: { request: ReportBatch, answer: ReportsReply },
  map: { request: MapRequest, answer: Count },
  heartbeat: { request: Heartbeat, answer: Schema.Null },
  appendContext: { request: ContextAppend, answer: Schema.Boolean },
  readResults: { request: ReadResultsRequest, answer: ResultsPage }
} as const
export type CallName = keyof typeof calls
export const isCallName = (name: unknown): name is CallName => typeof name === "string" && Object.hasOwn(calls, name)

/** Worker → page: a call to the tracker, its payload checked apart with the call's own schema. */
export const WorkerCall = Schema.Struct({
  type: Schema.Literal("call"),
  id: Count,
  call: Schema.Literals(["report", "map", "heartbeat", "appendContext", "readResults"]),
  payload: Schema.Unknown
})

/** Worker → page: the worker runs (after init), or a join finished. */
export const WorkerNotice = Schema.Union([
  Schema.Struct({ type: Schema.Literal("ready"), workerId: Id }),
  Schema.Struct({ type: Schema.Literal("joined"), id: Count, error: Schema.NullOr(LinkError) })
])

/** Page → worker. */
export const PageMessage = Schema.Union([
  Schema.Struct({
    type: Schema.Literal("init"),
    workerId: Id,
    slots: Schema.Int.check(Schema.isGreaterThan(0)),
    heartbeatInterval: Count
  }),
  Schema.Struct({ type: Schema.Literal("deliver"), batch: TaskBatch }),
  Schema.Struct({ type: Schema.Literal("stop"), message: StopMessage }),
  Schema.Struct({ type: Schema.Literal("join"), id: Count, instanceId: Id }),
  Schema.Struct({ type: Schema.Literal("answer"), id: Count, ok: Schema.Literal(true), value: Schema.Unknown }),
  Schema.Struct({ type: Schema.Literal("answer"), id: Count, ok: Schema.Literal(false), error: LinkError })
])
export type PageMessage = typeof PageMessage.Type

/** A message as decode found it, or what was wrong with it (the path of the bad field). */
export type Decoded<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly error: string }

export const decoder = <S extends Schema.Decoder<unknown>>(schema: S) => {
  const decode = Schema.decodeUnknownResult(schema as unknown as Schema.Codec<S["Type"], unknown>)
  return (input: unknown): Decoded<S["Type"]> => {
    const result = decode(input, { errors: "all", onExcessProperty: "ignore" })
    return result._tag === "Success"
      ? { ok: true, value: result.success }
      : { ok: false, error: result.failure.message }
  }
}

export const encodeLinkError = Schema.encodeSync(LinkError)

/**
 * Byte bodies cross by transfer, not by copy. The sender keeps its own array (the tracker may send
 * the same task again, a processor may still read what it mapped): each crossing body is one fresh
 * copy whose buffer is handed over, which costs one copy where structured cloning costs two.
 */
export const transferable = (body: TaskBody, transfer: ArrayBuffer[]): TaskBody => {
  if (typeof body === "string") return body
  const copy = body.slice()
  transfer.push(copy.buffer)
  return copy
}

/**
 * The minimum of a Worker, a DedicatedWorkerGlobalScope and a MessagePort that both sides use. Written out
 * rather than taken from the DOM's types, so code built for Node or Workers needs no DOM library.
 */
export interface Port {
  postMessage(message: unknown, options?: { transfer?: ArrayBuffer[] }): void
  addEventListener(type: "message" | "messageerror", listener: (event: MessageEvent) => void): void
  /** MessagePorts deliver nothing before start(); workers have no such method. */
  start?: () => void
}

/** A Web Worker's error event, as much of it as the page reads. */
export interface WorkerError {
  readonly message: string
  preventDefault(): void
}

/** What the page needs of a Web Worker (a `Worker` is one). */
export interface WorkerLike extends Port {
  addEventListener(type: "message" | "messageerror", listener: (event: MessageEvent) => void): void
  addEventListener(type: "error", listener: (event: WorkerError) => void): void
  terminate(): void
}
