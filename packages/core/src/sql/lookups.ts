import { Effect } from "effect"
import type { StoreError } from "../model/errors.ts"
import type { InstanceRow } from "../model/instance.ts"
import { TaskStatus } from "../model/status.ts"
import type { SqlDriver } from "./driver.ts"
import { readInstance } from "./rows.ts"

// Reads beyond the TaskStore port, for a host that runs one instance and must decide before it resumes.

const ROW = "SELECT row FROM taskfold_instances WHERE id = ?"
const BUSY = `SELECT DISTINCT worker FROM taskfold_tasks
  WHERE instance = (SELECT key FROM taskfold_instances WHERE id = ?)
    AND status BETWEEN ${TaskStatus.Dispatched} AND ${TaskStatus.Running} AND worker IS NOT NULL`

/** The stored row of an instance without its tasks, or undefined if none is stored. */
export const readSqlInstanceRow = (
  driver: SqlDriver,
  instanceId: string
): Effect.Effect<InstanceRow | undefined, StoreError> =>
  Effect.flatMap(driver.execute({ sql: ROW, params: [instanceId] }), ([found]) =>
    found === undefined ? Effect.succeed(undefined) : readInstance(instanceId, found["row"] ?? null)
  )

/** Workers holding live tasks (Dispatched, Received or Running) of an instance. */
export const readSqlBusyWorkers = (driver: SqlDriver, instanceId: string): Effect.Effect<Set<string>, StoreError> =>
  Effect.map(
    driver.execute({ sql: BUSY, params: [instanceId] }),
    (rows) => new Set(rows.map((row) => row["worker"] as string))
  )
