import { StoreError } from "@taskfold/core"
import {
  makeMemoryOutcomeLog,
  makeMemoryStore,
  type OutcomeRetention,
  type TaskStoreShape
} from "@taskfold/core/adapter"
import { DEFAULT_MAX_BODY_BYTES, makeTrackerApp } from "@taskfold/core/wire"
import { Effect, type Scope } from "effect"
import { listen, type ListenError } from "../http.ts"
import { openSqliteOutcomeLog, openSqliteStore } from "../sqlite/store.ts"
import { makeTrackerServer, type TrackerServer, type TrackerServerOptions } from "@taskfold/core/wire"

export interface ServeTrackerOptions extends Omit<TrackerServerOptions, "store" | "outcomes"> {
  /** 0 picks a free port. */
  readonly port: number
  /** The address to bind; 127.0.0.1 by default. Another than loopback wants a TLS-terminating proxy in front. */
  readonly host?: string
  /** A SQLite file for tasks and outcomes; in memory when absent. */
  readonly db?: string
  readonly maxBodyBytes?: number
  /**
   * How long finished instances stay listed and answer status (default: the newest 10,000 in memory,
   * 100,000 in SQL).
   */
  readonly outcomeRetention?: OutcomeRetention
  /** Secrets being rotated out: still accepted, for the operator and for worker credentials made under them. */
  readonly previousTokens?: ReadonlyArray<string>
}

export interface RunningTracker extends TrackerServer {
  readonly url: string
  readonly port: number
}

/** Opens the store, resumes its instances, then serves the tracker protocol (on 127.0.0.1) while the scope lives. */
export const serveTracker = (
  options: ServeTrackerOptions
): Effect.Effect<RunningTracker, StoreError | ListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const db = options.db
    const store: TaskStoreShape =
      db === undefined
        ? makeMemoryStore()
        : yield* Effect.acquireRelease(
            Effect.try({ try: () => openSqliteStore(db), catch: (error) => storeError(db, error) }),
            (opened) => Effect.sync(() => opened.close())
          )
    const outcomes =
      db === undefined
        ? makeMemoryOutcomeLog(options.outcomeRetention)
        : yield* Effect.acquireRelease(
            Effect.try({
              try: () => openSqliteOutcomeLog(db, options.outcomeRetention),
              catch: (error) => storeError(db, error)
            }),
            (log) => Effect.sync(() => log.close())
          )
    const server = yield* makeTrackerServer({ ...options, store, outcomes })
    const app = makeTrackerApp(server.host, {
      token: options.token,
      maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      ...(options.previousTokens === undefined ? {} : { previousTokens: options.previousTokens })
    })
    const listening = yield* listen(app.fetch, options.port, options.host)
    return { ...server, ...listening }
  })

const storeError = (path: string, error: unknown): StoreError =>
  error instanceof StoreError
    ? error
    : new StoreError({
        reason: "unavailable",
        message: `cannot open ${path}: ${error instanceof Error ? error.message : String(error)}`
      })
