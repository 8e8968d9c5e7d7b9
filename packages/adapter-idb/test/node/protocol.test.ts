import { Effect, Exit, Scope } from "effect"
import { describe, expect, it, vi } from "vitest"
import { resolveConfig } from "@taskfold/core"
import { makeMemoryStore, startTracker, TaskStore, Transport, type TaskBatch } from "@taskfold/core/adapter"
import { makeWebWorkerNetwork } from "../../src/index.ts"
import { transferable, type Port, type WorkerLike } from "@taskfold/core/wire"
import { serveWebWorker } from "@taskfold/core/wire"

/** A worker end the test speaks for itself: it answers init, records what it gets, and can send anything. */
const scriptedWorker = () => {
  const { port1, port2 } = new MessageChannel()
  const received: unknown[] = []
  port2.addEventListener("message", (event: MessageEvent) => {
    const data = event.data as { type: string; workerId?: string }
    received.push(data)
    if (data.type === "init") port2.postMessage({ type: "ready", workerId: data.workerId })
  })
  port2.start()
  const worker = {
    postMessage: (message: unknown, options?: StructuredSerializeOptions) => port1.postMessage(message, options),
    addEventListener: (type: string, listener: (event: MessageEvent) => void) =>
      port1.addEventListener(type, listener as EventListener),
    start: () => port1.start(),
    terminate: () => {
      port1.close()
      port2.close()
    }
  } as WorkerLike
  /** Sends a message as the worker and waits for the page's answer to call `id`. */
  const ask = (message: { id: number } & Record<string, unknown>) =>
    new Promise<{ ok: boolean; value?: unknown; error?: { _tag: string; reason: string; message: string } }>(
      (resolve) => {
        const listener = (event: MessageEvent) => {
          const data = event.data as { type: string; id: number }
          if (data.type === "answer" && data.id === message.id) {
            port2.removeEventListener("message", listener as EventListener)
            resolve(event.data)
          }
        }
        port2.addEventListener("message", listener as EventListener)
        port2.postMessage(message)
      }
    )
  return { worker, received, ask }
}

const withTracker = <A>(
  body: (env: {
    network: ReturnType<typeof makeWebWorkerNetwork>
    worker: ReturnType<typeof scriptedWorker>
    instanceId: string
  }) => Effect.Effect<A, unknown, Scope.Scope>
) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const network = makeWebWorkerNetwork()
        const worker = scriptedWorker()
        yield* network.spawn({ id: "web-1", create: () => worker.worker, slots: 2, heartbeatInterval: 1_000 })
        const tracker = yield* startTracker({
          instanceId: "wire",
          job: "wire",
          kind: "standalone",
          config: yield* resolveConfig({}),
          params: "null",
          localWorkerId: "page"
        }).pipe(
          Effect.provideService(TaskStore, makeMemoryStore()),
          Effect.provideService(Transport, network.transport)
        )
        network.addTracker(tracker)
        return yield* body({ network, worker, instanceId: tracker.instanceId })
      })
    )
  )

describe("page ↔ Web Worker messages", () => {
  it("R-WIRE-1 a worker's call that fails the core's schema is answered bad-input with the path of the bad field", () =>
    withTracker(({ worker }) =>
      Effect.promise(async () => {
        const answer = await worker.ask({
          type: "call",
          id: 1,
          call: "heartbeat",
          payload: { instanceId: "wire", workerId: "web-1", slots: -1, freeSlots: 0, queueLength: 0, idle: true }
        })
        expect(answer.ok).toBe(false)
        expect(answer.error).toMatchObject({ _tag: "RejectedError", reason: "bad-input" })
        expect(answer.error?.message).toContain('["slots"]')
      })
    ))

  it("R-WIRE-1 a well-formed call is answered with its value; one for an unknown instance fails as unreachable", () =>
    withTracker(({ worker }) =>
      Effect.promise(async () => {
        const ok = await worker.ask({
          type: "call",
          id: 2,
          call: "heartbeat",
          payload: { instanceId: "wire", workerId: "web-1", slots: 2, freeSlots: 2, queueLength: 0, idle: true }
        })
        expect(ok).toMatchObject({ ok: true, value: null })
        const unknown = await worker.ask({
          type: "call",
          id: 3,
          call: "report",
          payload: { instanceId: "other", workerId: "web-1", reports: [] }
        })
        expect(unknown.error).toMatchObject({ _tag: "TransportError", reason: "unreachable" })
        const results = await worker.ask({
          type: "call",
          id: 4,
          call: "readResults",
          payload: { instanceId: "wire", run: 0, afterSeq: -1, limit: 10 }
        })
        expect(results).toMatchObject({ ok: true, value: [] })
      })
    ))

  it("R-WIRE-1 a call whose envelope is malformed is still answered, with bad-input", () =>
    withTracker(({ worker }) =>
      Effect.promise(async () => {
        const answer = await worker.ask({ type: "call", id: 9, call: "steal", payload: {} })
        expect(answer.error).toMatchObject({ _tag: "RejectedError", reason: "bad-input" })
        expect(answer.error?.message).toContain('["call"]')
      })
    ))

  it("R-WIRE-1 a worker cannot speak for another worker", () =>
    withTracker(({ worker }) =>
      Effect.promise(async () => {
        const answer = await worker.ask({
          type: "call",
          id: 5,
          call: "heartbeat",
          payload: { instanceId: "wire", workerId: "web-2", slots: 2, freeSlots: 2, queueLength: 0, idle: true }
        })
        expect(answer.error).toMatchObject({ _tag: "RejectedError", reason: "wrong-worker" })
      })
    ))

  it("a reports answer keeps its tagged errors across the channel", () =>
    withTracker(({ worker }) =>
      Effect.promise(async () => {
        const answer = await worker.ask({
          type: "call",
          id: 6,
          call: "report",
          payload: {
            instanceId: "wire",
            workerId: "web-1",
            reports: [{ taskId: "0.99", attempt: 0, status: 6, result: "1" }]
          }
        })
        expect(answer.ok).toBe(true)
        expect(answer.value).toMatchObject({
          rejected: [{ taskId: "0.99", error: { _tag: "RejectedError", reason: "unknown-task" } }]
        })
      })
    ))

  it("byte bodies cross by transfer of a copy: the sender's array stays whole", () =>
    withTracker(({ network, worker }) =>
      Effect.gen(function* () {
        const body = new Uint8Array([1, 2, 3, 4])
        const batch: TaskBatch = {
          instanceId: "wire",
          job: "wire",
          params: "null",
          seq: 0,
          context: {},
          tasks: [{ id: "0.1", name: "x", kind: 0, body, attempt: 0 }]
        }
        yield* network.transport.send("web-1", batch)
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
        const delivered = worker.received.find((message) => (message as { type: string }).type === "deliver") as
          | { batch: TaskBatch }
          | undefined
        expect([...(delivered!.batch.tasks[0]!.body as Uint8Array)]).toEqual([1, 2, 3, 4])
        expect(body.byteLength).toBe(4)
        const transfer: ArrayBuffer[] = []
        const copy = transferable(body, transfer)
        expect(copy).not.toBe(body)
        expect(transfer).toEqual([(copy as Uint8Array).buffer])
        expect(transferable("text", transfer)).toBe("text")
      })
    ))

  it("R-DISP-7 a send to a worker that is gone fails, so the tracker takes its tasks back", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const network = makeWebWorkerNetwork()
        const worker = scriptedWorker()
        const scope = yield* Scope.make()
        yield* network
          .spawn({ id: "web-1", create: () => worker.worker, slots: 2, heartbeatInterval: 1_000 })
          .pipe(Scope.provide(scope))
        yield* Scope.close(scope, Exit.void)
        const exit = yield* Effect.exit(
          network.transport.send("web-1", { instanceId: "x", job: "x", params: "null", seq: 0, context: {}, tasks: [] })
        )
        expect(Exit.isFailure(exit)).toBe(true)
      })
    ))

  it("R-WIRE-1 the worker drops a malformed message and keeps working; an answer it cannot read fails its call", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined)
    const { port1, port2 } = new MessageChannel()
    const served = serveWebWorker({ jobs: [] }, port2 as Port)
    const got: Array<{ type: string; id?: number; call?: string; error?: unknown }> = []
    port1.addEventListener("message", (event: MessageEvent) => void got.push(event.data))
    port1.start()
    const next = async (match: (message: (typeof got)[number]) => boolean) => {
      for (let i = 0; i < 200; i++) {
        const found = got.find(match)
        if (found) return found
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      throw new Error("no such message")
    }
    try {
      port1.postMessage({ type: "init", workerId: "w", slots: 1, heartbeatInterval: 60_000 })
      await next((message) => message.type === "ready")
      port1.postMessage({ type: "deliver", batch: { instanceId: "" } })
      port1.postMessage({ type: "join", id: 1, instanceId: "i" })
      const call = await next((message) => message.type === "call" && message.call === "heartbeat")
      expect(warn).toHaveBeenCalledWith(expect.stringContaining("malformed"))
      port1.postMessage({ type: "answer", id: call.id, ok: true, value: "not null" })
      const joined = await next((message) => message.type === "joined")
      expect(joined.error).toMatchObject({ _tag: "TransportError", reason: "rejected" })
    } finally {
      served.close()
      port1.close()
      warn.mockRestore()
    }
  })
})
