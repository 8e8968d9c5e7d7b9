export { deleteIdbStore, IdbStoreLayer, openIdbStore, type IdbStore, type IdbStoreOptions } from "./store.ts"
// The postMessage transport is core's (it runs wherever MessagePorts do); named here for the page's users.
export {
  makeWebWorkerNetwork,
  type OutcomeOwner,
  type RemoteWorker,
  serveWebWorker,
  type ServeOptions,
  type SpawnOptions,
  type WebWorkerNetwork,
  type WorkerLike
} from "@taskfold/core/wire"
export {
  defaultPoolSize,
  startBrowserCluster,
  type BrowserCluster,
  type BrowserClusterOptions,
  type StartOptions
} from "./cluster.ts"
