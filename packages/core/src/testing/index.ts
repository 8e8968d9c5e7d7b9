export { instanceRow, taskRow, taskStoreConformance, updateOf } from "./task-store-conformance.ts"
export { sqlStoreSuite } from "./sql-store-suite.ts"
export { makeFaultNetwork, noFaults, type FaultNetwork, type FaultPolicy } from "./fault-network.ts"
export {
  CONFORMANCE_INSTANCE,
  CONFORMANCE_JOB,
  conformanceResults,
  conformanceTracker,
  conformanceWorker,
  TRANSPORT_CASES,
  transportConformance,
  type ConformanceTracker,
  type ConformanceWorker,
  type DeliveredOutcome,
  type LinkFixture,
  type Received,
  type TrackerCall,
  type TransportCase,
  type TransportConformanceOptions,
  type TransportFixture
} from "./transport-conformance.ts"
