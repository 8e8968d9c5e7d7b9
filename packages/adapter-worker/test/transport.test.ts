import { TransportError } from "@taskfold/core"
import { laneId } from "../src/index.ts"
import {
  conformanceWorker,
  transportConformance,
  type ConformanceWorker,
  type DeliveredOutcome,
  type TransportFixture
} from "@taskfold/core/testing"
import { httpTrackerLink, httpWorkerTransport, workerCredential } from "@taskfold/core/wire"
import { env } from "cloudflare:workers"
import { Effect } from "effect"
import {
  conformance,
  CONFORMANCE_MAX_BODY_BYTES,
  CONFORMANCE_TOKEN,
  LANE_COUNT,
  LANE_MAX_BODY_BYTES,
  type LaneSettled,
  laneProbeOf,
  laneReceived
} from "./conformance.ts"

/** Every call leaves the test through the Worker's service binding to itself. */
const viaBinding = (input: string, init: RequestInit) => env.WORKERS.fetch(input, init)

let next = 0

/**
 * Core's HTTP transport and link in workerd, over a service binding: httpWorkerTransport to makeWorkerApp and
 * httpTrackerLink to makeTrackerApp, both apps served by the test Worker (conformance.ts).
 */
const serviceBindingFixture = (): TransportFixture => {
  const handles = new Map<string, ConformanceWorker>()
  const instances = new Set<string>()
  const delivered: DeliveredOutcome[] = []
  const refusing = new Set<string>()
  /** Each worker's credential (R-WIRE-4), made when the worker is. */
  const credentials = new Map<string, string>()
  const transport = httpWorkerTransport({
    fetch: viaBinding,
    timeoutMs: 5_000,
    workerAddress: (workerId) =>
      handles.has(workerId) ? { url: conformance.workerUrl(workerId), key: CONFORMANCE_TOKEN } : undefined,
    deliverOutcome: (instanceId, outcome) =>
      Effect.suspend(() => {
        if (refusing.has(instanceId))
          return Effect.fail(new TransportError({ reason: "rejected", message: `the owner of ${instanceId} refused` }))
        delivered.push({ instanceId, outcome })
        return Effect.void
      })
  })
  return {
    transport,
    workers: async (count) =>
      Promise.all(
        Array.from({ length: count }, async () => {
          const handle = conformanceWorker(`binding-${next++}`)
          handles.set(handle.id, handle)
          credentials.set(handle.id, await workerCredential(CONFORMANCE_TOKEN, handle.id))
          conformance.addWorker(handle)
          return handle.id
        })
      ),
    received: async (workerId) => handles.get(workerId)?.received() ?? { batches: [], stops: [] },
    outcomes: async () => [...delivered],
    refuseOutcomes: async (instanceId) => void refusing.add(instanceId),
    removeWorker: async (workerId) => conformance.removeWorker(workerId),
    close: async () => {
      for (const workerId of handles.keys()) conformance.removeWorker(workerId)
      for (const instanceId of instances) conformance.removeTracker(instanceId)
    },
    link: {
      addTracker: async (tracker) => {
        instances.add(tracker.instanceId)
        conformance.addTracker(tracker)
      },
      connect: (workerId, instanceId) =>
        httpTrackerLink({
          baseUrl: conformance.trackerUrl,
          token: credentials.get(workerId) ?? CONFORMANCE_TOKEN,
          fetch: viaBinding
        })(instanceId)
    }
  }
}

transportConformance("HTTP over a Workers service binding (workerd)", serviceBindingFixture, {
  maxMessageBytes: CONFORMANCE_MAX_BODY_BYTES
})

/**
 * Lanes (core wire/lanes.ts), the adapter's transport to the Worker invocations that run sub-tasks: a lane set in a
 * Durable Object, as the tracker object holds it, starting invocations through the service binding; each
 * invocation runs core's worker runtime on what it polls from the object. The suite drives the object by RPC.
 */
const lanesFixture = (): TransportFixture => {
  const home = `lanes-${crypto.randomUUID()}`
  const probe = laneProbeOf(home)
  const settled = (result: LaneSettled) =>
    result.ok
      ? Effect.void
      : "defect" in result
        ? Effect.die(result.defect)
        : Effect.fail(new TransportError({ reason: result.reason, message: result.message }))
  /** An RPC call to the probe; its value is plain data (LaneSettled). */
  const rpc = (call: () => Promise<unknown>) =>
    Effect.flatMap(Effect.promise(call as () => Promise<LaneSettled>), settled)
  const delivered: DeliveredOutcome[] = []
  let taken = 0
  return {
    transport: {
      send: (workerId, batch) => rpc(() => probe.send(workerId, batch)),
      stop: (workerId, message) => rpc(() => probe.stop(workerId, message)),
      // Outcomes do not travel through lanes: the object keeps them itself (taskfold.ts).
      deliverOutcome: (instanceId, outcome) => Effect.sync(() => void delivered.push({ instanceId, outcome }))
    },
    workers: async (count) => {
      if (taken + count > LANE_COUNT) throw new Error(`the lane set has ${LANE_COUNT} lanes`)
      return Array.from({ length: count }, () => laneId(taken++))
    },
    received: async (workerId) => laneReceived(home, workerId),
    outcomes: async () => [...delivered],
    close: async () => {
      await probe.close()
    }
  }
}

transportConformance(
  "Workers lanes (makeLaneSet in a Durable Object, runLane over the service binding)",
  lanesFixture,
  {
    maxMessageBytes: LANE_MAX_BODY_BYTES,
    skip: {
      outcome: "outcomes do not travel through lanes: the tracker object keeps them itself (taskfold.ts)",
      "outcome-refused": "outcomes do not travel through lanes: the tracker object keeps them itself (taskfold.ts)"
    }
  }
)
