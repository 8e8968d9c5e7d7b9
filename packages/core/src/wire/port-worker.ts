/**
 * The Web Worker's side: runs the core's worker runtime inside the worker, with a TrackerLink that
 * reaches the page's tracker over postMessage. A worker script is two lines:
 *
 * ```ts
 * import { serveWebWorker } from "@taskfold/idb"
 * serveWebWorker({ jobs: [wordCount] })
 * ```
 */
import { Effect, Exit, Fiber } from "effect"
import { TransportError } from "../model/errors.ts"
import type { Job } from "../model/job.ts"
import { startWorker, type TrackerLink, type WorkerHandle } from "../worker/runtime.ts"
import {
  calls,
  decoder,
  encodeLinkError,
  PageMessage,
  transferable,
  type CallName,
  type LinkError,
  type Port
} from "./port-protocol.ts"

export interface ServeOptions {
  /** The jobs this worker can run, or a lookup by name. */
  readonly jobs: ReadonlyArray<Job> | ((name: string) => Job | undefined)
}

type Answer<N extends CallName> = (typeof calls)[N]["answer"]["Type"]

interface Pending {
  readonly name: CallName
  readonly resume: (effect: Effect.Effect<never, LinkError> | Effect.Effect<unknown>) => void
}

const decodePage = decoder(PageMessage)
const decodeAnswer: { readonly [K in CallName]: ReturnType<typeof decoder<(typeof calls)[K]["answer"]>> } = {
  report: decoder(calls.report.answer),
  map: decoder(calls.map.answer),
  heartbeat: decoder(calls.heartbeat.answer),
  appendContext: decoder(calls.appendContext.answer),
  readResults: decoder(calls.readResults.answer)
}

/**
 * Serves the page that started this worker: waits for its identity, starts the worker runtime, runs
 * the task batches it is sent and reports back. `port` is the worker's global scope unless given.
 */
export const serveWebWorker = (
  options: ServeOptions,
  port: Port = globalThis as unknown as Port
): { readonly close: () => void } => {
  const jobs =
    typeof options.jobs === "function"
      ? options.jobs
      : (name: string) => (options.jobs as ReadonlyArray<Job>).find((job) => job.name === name)
  const pending = new Map<number, Pending>()
  let nextCall = 0
  let handle: WorkerHandle | undefined
  let runtime: Fiber.Fiber<never> | undefined

  const call = <N extends CallName>(
    name: N,
    payload: unknown,
    transfer: ArrayBuffer[] = []
  ): Effect.Effect<Answer<N>, LinkError> =>
    Effect.callback<Answer<N>, LinkError>((resume) => {
      const id = nextCall++
      pending.set(id, { name, resume: resume as Pending["resume"] })
      port.postMessage({ type: "call", id, call: name, payload }, { transfer })
      return Effect.sync(() => pending.delete(id))
    })

  const connect = (instanceId: string): TrackerLink => ({
    report: (batch) => call("report", batch),
    // Fresh copies at every run of the effect: a transferred buffer is gone from this side.
    map: (request) =>
      Effect.suspend(() => {
        const transfer: ArrayBuffer[] = []
        const bodies = request.bodies.map((body) => transferable(body, transfer))
        return call("map", { ...request, bodies }, transfer)
      }),
    heartbeat: (heartbeat) => Effect.asVoid(call("heartbeat", heartbeat)),
    appendContext: (request) => call("appendContext", request),
    readResults: (run, afterSeq, limit) => call("readResults", { instanceId, run, afterSeq, limit })
  })

  const start = (workerId: string, slots: number, heartbeatInterval: number) => {
    runtime = Effect.runFork(
      Effect.scoped(
        Effect.gen(function* () {
          handle = yield* startWorker({ id: workerId, slots, jobs, connect, heartbeatInterval }).pipe(Effect.orDie)
          port.postMessage({ type: "ready", workerId })
          return yield* Effect.never
        })
      )
    )
  }

  port.addEventListener("message", (event: MessageEvent) => {
    const decoded = decodePage(event.data)
    if (!decoded.ok) {
      // An answer we cannot read still ends its call, so no caller waits forever.
      const data = event.data as { type?: unknown; id?: unknown } | null
      const waiting = data?.type === "answer" && typeof data.id === "number" ? pending.get(data.id) : undefined
      if (waiting !== undefined) {
        pending.delete(data!.id as number)
        waiting.resume(
          Effect.fail(new TransportError({ reason: "rejected", message: `malformed answer: ${decoded.error}` }))
        )
      } else console.warn(`taskfold worker: dropped a malformed message: ${decoded.error}`)
      return
    }
    const message = decoded.value
    switch (message.type) {
      case "init":
        if (handle === undefined) start(message.workerId, message.slots, message.heartbeatInterval)
        return
      case "deliver":
        handle?.deliver(message.batch)
        return
      case "stop":
        handle?.stop(message.message)
        return
      case "join": {
        const id = message.id
        if (handle === undefined) {
          port.postMessage({
            type: "joined",
            id,
            error: encodeLinkError(new TransportError({ reason: "closed", message: "worker not started" }))
          })
          return
        }
        void Effect.runPromiseExit(handle.join(message.instanceId)).then((exit) => {
          const failure = Exit.isFailure(exit) ? exit.cause.reasons.find((reason) => reason._tag === "Fail") : undefined
          const error = Exit.isSuccess(exit)
            ? null
            : failure?._tag === "Fail"
              ? (failure.error as LinkError)
              : new TransportError({ reason: "rejected", message: "join failed" })
          port.postMessage({ type: "joined", id, error: error === null ? null : encodeLinkError(error) })
        })
        return
      }
      case "answer": {
        const waiting = pending.get(message.id)
        if (waiting === undefined) return
        pending.delete(message.id)
        if (!message.ok) {
          waiting.resume(Effect.fail(message.error))
          return
        }
        const value = decodeAnswer[waiting.name](message.value)
        waiting.resume(
          value.ok
            ? Effect.succeed(value.value)
            : Effect.fail(
                new TransportError({ reason: "rejected", message: `malformed ${waiting.name} answer: ${value.error}` })
              )
        )
        return
      }
    }
  })
  port.start?.()
  return {
    /** Stops the worker runtime (a terminated Web Worker needs no such call). */
    close: () => {
      if (runtime !== undefined) Effect.runFork(Fiber.interrupt(runtime))
    }
  }
}
