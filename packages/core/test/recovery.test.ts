import { Effect, Exit, Fiber, Option, Scope } from "effect"
import { describe, expect, it } from "vitest"
import { defineJob, resolveConfig, type TaskResult } from "../src/index.ts"
import {
  makeMemoryNetwork,
  makeMemoryStore,
  resumeTracker,
  startTracker,
  TaskStore,
  Transport,
  type TaskStoreShape
} from "../src/adapter.ts"
import { closeScope, counter, crashableLinks, LOCAL, outcomeWithin, sleep, startCluster, waitUntil } from "./support.ts"

const N = 200

/** Task ids the store holds as terminal (Failed or Succeeded) right now. */
const terminalIds = (store: ReturnType<typeof makeMemoryStore>, instanceId: string): Set<string> => {
  const ids = new Set<string>()
  for (const [id, row] of store.instances.get(instanceId)?.byId ?? []) if (row.status >= 5) ids.add(id)
  return ids
}

describe("tracker restart on a durable store", () => {
  it("R-REC-1 R-REC-2 a tracker stopped mid-run resumes from the store: the instance succeeds, no terminal task runs again, reduce sees every task once", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const store = makeMemoryStore()
          const invocations = counter()
          const reduced: TaskResult[] = []
          const job = defineJob({
            name: "recover",
            kind: "mapReduce",
            config: { taskRetries: 0, heartbeatInterval: 20, workerTimeout: 150, ackTimeout: 300 },
            process: async (task, ctx) => {
              invocations.add(task.id)
              if (task.isRoot) {
                await ctx.map(
                  Array.from({ length: N }, (_, i) => i + 1),
                  "item"
                )
                return "mapped"
              }
              await sleep(4)
              return (task.body as number) * 2
            },
            reduce: async (results) => {
              let sum = 0
              for await (const result of results) {
                reduced.push(result)
                if (result.name === "item" && result.ok) sum += result.result as number
              }
              return sum
            }
          })
          // A real network drops the connections of a crashed process: calls in flight at the crash fail.
          const links = crashableLinks()
          const cluster = yield* startCluster({
            job,
            store,
            workers: 3,
            slots: 4,
            link: (_id, base) => links.wrap(base)
          })
          const { instanceId, network } = cluster

          // Let part of the work finish, then crash the tracker's process: the tracker and its local worker.
          yield* waitUntil(() => terminalIds(store, instanceId).size >= 60, "60 terminal tasks before the crash")
          network.removeTracker(instanceId)
          network.removeWorker(LOCAL)
          yield* closeScope(cluster.trackerScope)
          yield* closeScope(cluster.workers.get(LOCAL)!.scope)
          links.crash()
          const terminalBefore = terminalIds(store, instanceId)
          const runsBefore = new Map([...terminalBefore].map((id) => [id, invocations.get(id)]))
          expect(terminalBefore.size).toBeGreaterThanOrEqual(60)
          expect(terminalBefore.size).toBeLessThan(N + 1)
          yield* Effect.promise(() => sleep(40))

          // A new process resumes the instance from the same store, with a new local worker.
          const resumed = yield* resumeTracker(instanceId, "local-2").pipe(
            Effect.provideService(TaskStore, store),
            Effect.provideService(Transport, network.transport)
          )
          network.addTracker(resumed)
          yield* cluster.addWorker("local-2")
          for (const [id, worker] of cluster.workers)
            if (id !== LOCAL) yield* Effect.ignore(worker.handle.join(instanceId))

          const outcome = yield* outcomeWithin(resumed)
          expect(outcome.ok).toBe(true)
          expect(JSON.parse(outcome.result)).toBe(N * (N + 1))
          // Exactly-once accounting: reduce saw the root and every item once.
          expect(reduced).toHaveLength(N + 1)
          expect(new Set(reduced.map((result) => result.taskId)).size).toBe(N + 1)
          expect(reduced.every((result) => result.ok)).toBe(true)
          // No task that was terminal before the restart ran again.
          for (const [id, runs] of runsBefore) expect({ id, runs: invocations.get(id) }).toEqual({ id, runs })
          const progress = yield* resumed.progress
          expect(progress.byName["item"]).toMatchObject({ total: N, succeeded: N, failed: 0, waiting: 0 })
        })
      )
    ))
})

/** A tracker on a store whose writes block once `hold()` was called: the loop is caught inside a step. */
const trackerOnHeldStore = Effect.gen(function* () {
  const base = makeMemoryStore()
  let held = false
  let entered = false
  const store: TaskStoreShape = {
    ...base,
    apply: (batch) =>
      held
        ? Effect.promise(() => {
            entered = true
            return new Promise<void>(() => {})
          }).pipe(Effect.andThen(base.apply(batch)))
        : base.apply(batch)
  }
  const network = makeMemoryNetwork()
  const scope = yield* Scope.fork(yield* Scope.Scope)
  const instanceId = `held-${globalThis.crypto.randomUUID()}`
  const tracker = yield* startTracker({
    instanceId,
    job: "held",
    kind: "standalone",
    config: yield* resolveConfig({}),
    params: "null",
    localWorkerId: "local"
  }).pipe(
    Effect.provideService(TaskStore, store),
    Effect.provideService(Transport, network.transport),
    Scope.provide(scope)
  )
  yield* waitUntil(() => base.instances.has(instanceId), "the root task stored")
  return {
    tracker,
    scope,
    hold: () => {
      held = true
    },
    entered: () => entered
  }
})

describe("a tracker whose scope closes (process crash, eviction)", () => {
  // The loop fiber is interrupted when the scope closes; a finalizer must still answer every caller.
  it("R-REC-1 a call in flight when the tracker's scope closes is answered with an error, not left waiting", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { tracker, scope, hold, entered } = yield* trackerOnHeldStore
          hold()
          const call = yield* Effect.forkChild(tracker.kill(null, "operator"))
          yield* waitUntil(entered, "the kill step's write started")
          yield* closeScope(scope)
          const exit = yield* Fiber.await(call).pipe(Effect.timeoutOption(300))
          expect(Option.isSome(exit)).toBe(true)
          expect(Option.isSome(exit) && Exit.isFailure(exit.value)).toBe(true)
        })
      )
    ))

  it("R-REC-1 a call made after the tracker's scope closed fails at once instead of waiting forever", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { tracker, scope } = yield* trackerOnHeldStore
          yield* closeScope(scope)
          const exit = yield* Effect.exit(
            tracker.heartbeat({
              instanceId: tracker.instanceId,
              workerId: "w",
              slots: 1,
              freeSlots: 1,
              queueLength: 0,
              idle: true
            })
          ).pipe(Effect.timeoutOption(300))
          expect(Option.isSome(exit)).toBe(true)
          expect(Option.isSome(exit) && Exit.isFailure(exit.value)).toBe(true)
        })
      )
    ))
})
