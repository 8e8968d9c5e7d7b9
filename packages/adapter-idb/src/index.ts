export { deleteIdbStore, IdbStoreLayer, openIdbStore, type IdbStore, type IdbStoreOptions } from "./store.ts"
export {
  makeWebWorkerNetwork,
  type OutcomeOwner,
  type RemoteWorker,
  type SpawnOptions,
  type WebWorkerNetwork
} from "./network.ts"
export {
  defaultPoolSize,
  startBrowserCluster,
  type BrowserCluster,
  type BrowserClusterOptions,
  type StartOptions
} from "./cluster.ts"
export { serveWebWorker, type ServeOptions } from "./web-worker.ts"
