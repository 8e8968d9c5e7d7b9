import { StoreError } from "@taskfold/core"
import type { SqlDriver, TaskStoreShape } from "@taskfold/core/adapter"
import { instanceRow, sqlStoreSuite, taskRow, taskStoreConformance, updateOf } from "@taskfold/core/testing"
import { runInDurableObject } from "cloudflare:test"
import { env } from "cloudflare:workers"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { durableObjectDriver, MAX_BOUND_PARAMETERS } from "../src/sql-driver.ts"
import type { StoreProbe } from "./worker.ts"

/**
 * A store whose every call runs inside a fresh Durable Object (storage can only be touched from its own
 * object): the suite drives the real SQL store in workerd.
 */
const storeInObject = (): TaskStoreShape => {
  const stub = env.PROBE.get(env.PROBE.newUniqueId())
  const inside = <A, E>(call: (store: TaskStoreShape) => Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.flatten(
      Effect.promise(() => runInDurableObject(stub, (probe: StoreProbe) => Effect.runPromiseExit(call(probe.store))))
    )
  return {
    apply: (batch) => inside((store) => store.apply(batch)),
    readTasks: (instanceId, ids) => inside((store) => store.readTasks(instanceId, ids)),
    readResults: (instanceId, run, afterSeq, limit) =>
      inside((store) => store.readResults(instanceId, run, afterSeq, limit)),
    load: (instanceId) => inside((store) => store.load(instanceId)),
    listInstances: () => inside((store) => store.listInstances())
  }
}

taskStoreConformance("Durable Object SQL", storeInObject)

/** The driver of a fresh Durable Object, each call made inside it: core's SQL store suite runs on it. */
const driverInObject = (): SqlDriver => {
  const stub = env.PROBE.get(env.PROBE.newUniqueId())
  const inside = <A, E>(call: (driver: SqlDriver) => Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.flatten(
      Effect.promise(() =>
        runInDurableObject(stub, (_probe: StoreProbe, state) =>
          Effect.runPromiseExit(call(durableObjectDriver(state.storage)))
        )
      )
    )
  return {
    maxParams: MAX_BOUND_PARAMETERS,
    execute: (statement) => inside((driver) => driver.execute(statement)),
    transaction: (statements, mode) => inside((driver) => driver.transaction(statements, mode))
  }
}

sqlStoreSuite("Durable Object SQL", driverInObject)

describe("Durable Object SQL statements", () => {
  it("R-MAP-1 R-RETRY-4 a batch spanning many statements that fails at its last row changes nothing", async () => {
    const store = storeInObject()
    const instance = instanceRow("chunks")
    await Effect.runPromise(
      store.apply({ instance, inserts: [taskRow(0), taskRow(1)], updates: [], deleteRuns: [], deleteInstance: false })
    )
    // 1,000 new rows (more than a hundred statements), then a duplicate of a stored one.
    const rows = Array.from({ length: 1_000 }, (_, i) => taskRow(i + 2))
    const error = await Effect.runPromise(
      Effect.flip(
        store.apply({
          instance: instanceRow("chunks", { nextSeq: 5_000 }),
          inserts: [...rows, taskRow(1, { name: "dup" })],
          updates: [updateOf(taskRow(0), { status: 6, result: "1" })],
          deleteRuns: [],
          deleteInstance: false
        })
      )
    )
    expect(error).toBeInstanceOf(StoreError)
    expect(error.reason).toBe("conflict")
    const loaded = await Effect.runPromise(store.load("chunks"))
    expect(loaded?.instance).toEqual(instance)
    expect(loaded?.live.map((row) => row.id)).toEqual(["0", "0.1"])
  })
})
