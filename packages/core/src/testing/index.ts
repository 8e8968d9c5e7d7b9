export { instanceRow, taskRow, taskStoreConformance, updateOf } from "./task-store-conformance.ts"
