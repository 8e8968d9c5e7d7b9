import { Effect, Scope } from "effect"
import { describe, expect, it } from "vitest"
import { defineJob, resolveConfig } from "../src/index.ts"
import {
  makeMemoryNetwork,
  makeMemoryStore,
  resumeTracker,
  startTracker,
  TaskStore,
  Transport,
  type TaskRow,
  type TaskStoreShape
} from "../src/adapter.ts"
import { closeScope, waitUntil } from "./support.ts"

/** A root that maps 20 children and children that never finish on their own: the instance stays live. */
const job = defineJob({
  name: "held",
  kind: "mapReduce",
  process: async (task, ctx) =>
    task.isRoot
      ? ctx.map(
          Array.from({ length: 20 }, (_, i) => i),
          "item"
        )
      : new Promise(() => {}),
  reduce: async () => "reduced"
})

/** A store whose `load` gives the rows `alter` leaves: a store that lost or repeated rows. */
const faultyLoad = (
  store: TaskStoreShape,
  alter: (rows: ReadonlyArray<TaskRow>) => ReadonlyArray<TaskRow>
): TaskStoreShape => ({
  ...store,
  load: (instanceId) =>
    store
      .load(instanceId)
      .pipe(Effect.map((stored) => (stored === undefined ? undefined : { ...stored, live: alter(stored.live) })))
})

const resumeWith = (alter: Parameters<typeof faultyLoad>[1]) =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = makeMemoryStore()
      const network = makeMemoryNetwork()
      network.setOwner("held-1", () => {})
      const config = yield* resolveConfig({})
      const scope = yield* Scope.make()
      yield* startTracker({
        instanceId: "held-1",
        job: job.name,
        kind: job.kind,
        config,
        params: "null",
        localWorkerId: "local"
      }).pipe(
        Effect.provideService(TaskStore, store),
        Effect.provideService(Transport, network.transport),
        Scope.provide(scope)
      )
      // No worker runs the root: its row alone is the live task the counters count.
      yield* waitUntil(() => (store.instances.get("held-1")?.byId.size ?? 0) >= 1, "the instance stored")
      yield* closeScope(scope)
      const resumed = yield* resumeTracker("held-1", "local").pipe(
        Effect.provideService(TaskStore, faultyLoad(store, alter)),
        Effect.provideService(Transport, network.transport)
      )
      return yield* resumed.outcome
    })
  )

describe("resume checks the store", () => {
  it("R-FIN-4 a resumed instance whose store lost a row fails with the counts instead of going on", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const outcome = yield* resumeWith(() => [])
        expect(outcome.ok).toBe(false)
        expect(outcome.result).toMatch(
          /the store does not hold what the counters say: counted created 1, .* stored 0 rows/
        )
      })
    ))

  it("R-FIN-4 a resumed instance whose store repeats a row fails", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const outcome = yield* resumeWith((rows) => [...rows, ...rows])
        expect(outcome.ok).toBe(false)
        expect(outcome.result).toMatch(/repeated/)
      })
    ))

  it("R-FIN-4 a resumed instance whose rows match its counters goes on", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const outcome = yield* resumeWith((rows) => rows).pipe(Effect.timeoutOption(300))
        // Nothing finishes (no worker runs the root): no outcome, and in particular no store-mismatch.
        expect(outcome._tag).toBe("None")
      })
    ))
})
