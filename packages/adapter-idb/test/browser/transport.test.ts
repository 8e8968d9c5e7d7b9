import type { StopMessage, TaskBatch } from "@taskfold/core/adapter"
import {
  CONFORMANCE_INSTANCE,
  conformanceTracker,
  transportConformance,
  type DeliveredOutcome,
  type Received,
  type TransportFixture
} from "@taskfold/core/testing"
import { Effect, Exit, Scope } from "effect"
import { makeWebWorkerNetwork } from "../../src/index.ts"
import { CONFORMANCE_CHANNEL } from "./fixtures/conformance-worker.ts"

const createWorker = () => new Worker(new URL("./fixtures/conformance-worker.ts", import.meta.url), { type: "module" })

/** What every worker's recorder told the page, by worker id. */
const received = new Map<string, { batches: TaskBatch[]; stops: StopMessage[] }>()
new BroadcastChannel(CONFORMANCE_CHANNEL).addEventListener("message", (event: MessageEvent) => {
  const data = event.data as { workerId: string; batch?: TaskBatch; stop?: StopMessage }
  const seen = received.get(data.workerId) ?? { batches: [], stops: [] }
  received.set(data.workerId, seen)
  if (data.batch !== undefined) seen.batches.push(data.batch)
  if (data.stop !== undefined) seen.stops.push(data.stop)
})

let next = 0

/** Real Web Workers in Chromium, each running serveWebWorker with core's worker runtime. */
const webWorkerFixture = (): TransportFixture => {
  const network = makeWebWorkerNetwork()
  // The runtime in each worker reports on the tasks it holds: a tracker answers.
  network.addTracker(conformanceTracker(CONFORMANCE_INSTANCE))
  const delivered: DeliveredOutcome[] = []
  const refusing = new Set<string>()
  network.setOwner((instanceId, outcome) => {
    if (refusing.has(instanceId)) throw new Error(`the owner of ${instanceId} is not taking outcomes`)
    delivered.push({ instanceId, outcome })
  })
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
          const id = `chromium-${Date.now()}-${next++}`
          const scope = Effect.runSync(Scope.make())
          scopes.set(id, scope)
          await Effect.runPromise(
            network.spawn({ id, create: createWorker, slots: 4, heartbeatInterval: 60_000 }).pipe(Scope.provide(scope))
          )
          return id
        })
      ),
    received: async (workerId): Promise<Received> => {
      const seen = received.get(workerId)
      return { batches: [...(seen?.batches ?? [])], stops: [...(seen?.stops ?? [])] }
    },
    outcomes: async () => [...delivered],
    refuseOutcomes: async (instanceId) => void refusing.add(instanceId),
    removeWorker: close,
    close: async () => {
      for (const workerId of [...scopes.keys()]) await close(workerId)
    }
  }
}

transportConformance("Web Workers in Chromium (makeWebWorkerNetwork, serveWebWorker)", webWorkerFixture, {
  knownGaps: {
    receipt: "a send succeeds once the batch is posted; the worker sends no receipt back (web-worker.ts, protocol.ts)",
    refusal: "serveWebWorker drops what the worker's deliver answers; the page never hears of a refusal"
  }
})
