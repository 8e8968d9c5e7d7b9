export { openSqliteDriver, type SqliteDriver } from "./sqlite/driver.ts"
export { openSqliteOutcomeLog, openSqliteStore, SqliteStoreLayer, type SqliteStore } from "./sqlite/store.ts"
export { listen, ListenError, type Listening } from "./http.ts"
export { isJob, JobLoadError, loadJobs, type JobTable } from "./jobs.ts"
export { LOCAL_WORKER_ID, makeTrackerServer, type TrackerServer, type TrackerServerOptions } from "./server/host.ts"
export { serveTracker, type RunningTracker, type ServeTrackerOptions } from "./server/serve.ts"
export {
  defaultWorkerId,
  startWorkerProcess,
  type RunningWorker,
  type WorkerProcessOptions
} from "./worker-process/worker.ts"
export { MAX_THREADS, scopedThreadPool, threadPool, type ThreadPool, type ThreadPoolOptions } from "./threads/pool.ts"
export { runJobModule, type RunModuleOptions } from "./threads/run-module.ts"
