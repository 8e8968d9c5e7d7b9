import { makeMemoryNetwork } from "../src/adapter.ts"
import {
  conformanceWorker,
  transportConformance,
  type ConformanceWorker,
  type DeliveredOutcome,
  type TransportFixture
} from "../src/testing/index.ts"

/** The in-process transport: trackers and workers in one process, talking by direct calls. */
const memoryFixture = (): TransportFixture => {
  const network = makeMemoryNetwork()
  const workers = new Map<string, ConformanceWorker>()
  const delivered: DeliveredOutcome[] = []
  let next = 0
  return {
    transport: network.transport,
    workers: async (count) =>
      Array.from({ length: count }, () => {
        const worker = conformanceWorker(`memory-${next++}`)
        workers.set(worker.id, worker)
        network.addWorker(worker)
        return worker.id
      }),
    received: async (workerId) => workers.get(workerId)?.received() ?? { batches: [], stops: [] },
    outcomes: async () => [...delivered],
    addOwner: async (instanceId) =>
      network.setOwner(instanceId, (outcome) => void delivered.push({ instanceId, outcome })),
    refuseOutcomes: async (instanceId) =>
      network.setOwner(instanceId, () => {
        throw new Error("the owner is not taking outcomes")
      }),
    removeWorker: async (workerId) => network.removeWorker(workerId),
    close: async () => {
      for (const workerId of workers.keys()) network.removeWorker(workerId)
    },
    link: {
      addTracker: async (tracker) => network.addTracker(tracker),
      connect: (_workerId, instanceId) => network.link(instanceId)
    }
  }
}

transportConformance("in-process (makeMemoryNetwork, directLink)", memoryFixture)
