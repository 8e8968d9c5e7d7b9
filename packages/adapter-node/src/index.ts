export { openSqliteStore, SqliteStoreLayer, type SqliteStore } from "./sqlite/store.ts"
export * from "./cluster.ts"
export { MAX_THREADS, scopedThreadPool, threadPool, type ThreadPool, type ThreadPoolOptions } from "./threads/pool.ts"
export { runJobModule, type RunModuleOptions } from "./threads/run-module.ts"
