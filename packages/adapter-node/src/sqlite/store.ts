import type { StoreError } from "@taskfold/core"
import {
  makeSqlOutcomeLog,
  makeSqlStore,
  type OutcomeLogShape,
  type OutcomeRetention,
  type SqlDriver,
  sqliteStoreError,
  TaskStore,
  type TaskStoreShape
} from "@taskfold/core/adapter"
import { Effect, Layer } from "effect"
import { openSqliteDriver } from "./driver.ts"

type Closable = { readonly close: () => void }
export type SqliteStore = TaskStoreShape & Closable

/** Opens a connection and builds on it; throws a StoreError (the connection closed) if either fails. */
const onFile = <A>(path: string, make: (driver: SqlDriver) => Effect.Effect<A, StoreError>): A & Closable => {
  const driver = openSqliteDriver(path)
  try {
    return { ...Effect.runSync(make(driver)), close: driver.close }
  } catch (error) {
    driver.close()
    throw error
  }
}

/**
 * A durable TaskStore in one SQLite file (or ":memory:"): core's SQL store on node:sqlite. A database an
 * earlier run wrote resumes: `listInstances` gives the instances to resume (R-REC-1).
 */
export const openSqliteStore = (path: string | ":memory:"): SqliteStore => onFile(path, makeSqlStore)

/** Outcomes in a SQLite file, beside the store's tables, on a connection of their own; kept as `retention` says. */
export const openSqliteOutcomeLog = (
  path: string | ":memory:",
  retention: OutcomeRetention = {}
): OutcomeLogShape & Closable => onFile(path, (driver) => makeSqlOutcomeLog(driver, retention))

/** The store as a Layer: the database is opened when the layer is built and closed with its scope. */
export const SqliteStoreLayer = (path: string | ":memory:"): Layer.Layer<TaskStore, StoreError> =>
  Layer.effect(
    TaskStore,
    Effect.acquireRelease(
      Effect.try({ try: () => openSqliteStore(path), catch: (error) => sqliteStoreError(error, `opening ${path}`) }),
      (store) => Effect.sync(store.close)
    )
  )
