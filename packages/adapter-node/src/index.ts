export { openSqliteDriver, type SqliteDriver } from "./sqlite/driver.ts"
export { openSqliteOutcomeLog, openSqliteStore, SqliteStoreLayer, type SqliteStore } from "./sqlite/store.ts"
export { isLoopback, listen, ListenError, type Listening } from "./http.ts"
export { isJob, JobLoadError, loadJobs } from "./jobs.ts"
export {
  type JobTable,
  LOCAL_WORKER_ID,
  makeTrackerServer,
  type RunningWorker,
  type TrackerServer,
  type TrackerServerOptions
} from "@taskfold/core/wire"
export { serveTracker, type RunningTracker, type ServeTrackerOptions } from "./server/serve.ts"
export { defaultWorkerId, startWorkerProcess, type WorkerProcessOptions } from "./worker-process/worker.ts"
export { MAX_THREADS, scopedThreadPool, threadPool, type ThreadPool, type ThreadPoolOptions } from "./threads/pool.ts"
export { runJobModule, type RunModuleOptions } from "./threads/run-module.ts"
