export { instanceRow, taskRow, taskStoreConformance, updateOf } from "./task-store-conformance.ts"
export { makeFaultNetwork, noFaults, type FaultNetwork, type FaultPolicy } from "./fault-network.ts"
