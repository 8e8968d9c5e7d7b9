export { openSqliteStore, SqliteStoreLayer, type SqliteStore } from "./sqlite/store.ts"
export * from "./cluster.ts"
