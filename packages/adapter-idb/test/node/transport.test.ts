import type { TrackerLink, WorkerOptions } from "@taskfold/core/adapter"
import {
  conformanceWorker,
  transportConformance,
  type ConformanceWorker,
  type DeliveredOutcome,
  type TransportFixture
} from "@taskfold/core/testing"
import { Effect, Exit, Scope } from "effect"
import { vi } from "vitest"
import { makeWebWorkerNetwork } from "../../src/index.ts"
import { messageChannelWorker } from "./message-channel-worker.ts"

/**
 * The far end of each channel is serveWebWorker as a Web Worker runs it, with one change: the worker runtime
 * it starts is the suite's recording worker, and the link serveWebWorker hands that runtime (postMessage
 * calls to the page) is kept for the link cases.
 */
const farEnds = vi.hoisted(
  () => new Map<string, { readonly handle: ConformanceWorker; readonly connect: (instanceId: string) => TrackerLink }>()
)
// serveWebWorker (core wire) starts its runtime with core's startWorker, taken from this module.
vi.mock("../../../core/src/worker/runtime.ts", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../../../core/src/worker/runtime.ts")>()
  const { conformanceWorker } = await import("@taskfold/core/testing")
  return {
    ...actual,
    startWorker: (options: WorkerOptions) =>
      Effect.sync(() => {
        const handle = conformanceWorker(options.id)
        farEnds.set(options.id, { handle, connect: options.connect })
        return handle
      })
  }
})

/** Records outcomes, or refuses them (a throw) for the instances named. */
const owner = () => {
  const delivered: DeliveredOutcome[] = []
  const refusing = new Set<string>()
  return {
    delivered,
    refusing,
    take: (instanceId: string, outcome: DeliveredOutcome["outcome"]) => {
      if (refusing.has(instanceId)) throw new Error(`the owner of ${instanceId} is not taking outcomes`)
      delivered.push({ instanceId, outcome })
    }
  }
}

let next = 0

/** Web Workers over postMessage: the page's network, serveWebWorker at the far end of a MessageChannel. */
const webWorkerFixture = (): TransportFixture => {
  const network = makeWebWorkerNetwork()
  const outcomes = owner()
  network.setOwner(outcomes.take)
  const scopes = new Map<string, Scope.Closeable>()
  const close = async (workerId: string) => {
    const scope = scopes.get(workerId)
    scopes.delete(workerId)
    if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
  }
  return {
    transport: network.transport,
    workers: (count) =>
      Promise.all(
        Array.from({ length: count }, async () => {
          const id = `web-${next++}`
          const scope = Effect.runSync(Scope.make())
          scopes.set(id, scope)
          await Effect.runPromise(
            network
              .spawn({ id, create: messageChannelWorker([]), slots: 2, heartbeatInterval: 60_000 })
              .pipe(Scope.provide(scope))
          )
          return id
        })
      ),
    received: async (workerId) => farEnds.get(workerId)?.handle.received() ?? { batches: [], stops: [] },
    outcomes: async () => [...outcomes.delivered],
    refuseOutcomes: async (instanceId) => void outcomes.refusing.add(instanceId),
    removeWorker: close,
    close: async () => {
      for (const workerId of [...scopes.keys()]) await close(workerId)
    },
    link: {
      addTracker: async (tracker) => network.addTracker(tracker),
      connect: (workerId, instanceId) => farEnds.get(workerId)!.connect(instanceId)
    }
  }
}

transportConformance(
  "Web Worker postMessage (makeWebWorkerNetwork, serveWebWorker, MessageChannel)",
  webWorkerFixture,
  {
    knownGaps: {
      receipt:
        "a send succeeds once the batch is posted; the worker sends no receipt back (web-worker.ts, protocol.ts)",
      refusal: "serveWebWorker drops what the worker's deliver answers; the page never hears of a refusal"
    }
  }
)

/** Workers in the page itself (the tracker's local worker), reached by direct calls through the same network. */
const pageWorkerFixture = (): TransportFixture => {
  const network = makeWebWorkerNetwork()
  const outcomes = owner()
  network.setOwner(outcomes.take)
  const handles = new Map<string, ConformanceWorker>()
  return {
    transport: network.transport,
    workers: async (count) =>
      Array.from({ length: count }, () => {
        const handle = conformanceWorker(`page-${next++}`)
        handles.set(handle.id, handle)
        network.addLocalWorker(handle)
        return handle.id
      }),
    received: async (workerId) => handles.get(workerId)?.received() ?? { batches: [], stops: [] },
    outcomes: async () => [...outcomes.delivered],
    refuseOutcomes: async (instanceId) => void outcomes.refusing.add(instanceId),
    close: async () => undefined,
    link: {
      addTracker: async (tracker) => network.addTracker(tracker),
      connect: (_workerId, instanceId) => network.link(instanceId)
    }
  }
}

transportConformance("Web Worker network, workers in the page (addLocalWorker, directLink)", pageWorkerFixture, {
  skip: { "after-close": "a worker in the page lives as long as the page: nothing closes it" }
})
