import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { defineJob, TransportError, type Outcome } from "../src/index.ts"
import { makeMemoryStore, resumeTracker, TaskStore, Transport, type StopMessage } from "../src/adapter.ts"
import { closeScope, startCluster, waitUntil } from "./support.ts"

describe("outcome delivery", () => {
  it("R-FIN-6 an outcome the owner does not take is re-sent with the same value until accepted; then workers stop, tasks are deleted, the tracker is released", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const store = makeMemoryStore()
          const deliveries: Array<{ outcome: Outcome; at: number; stored: boolean }> = []
          const stops: Array<{ workerId: string; message: StopMessage; deliveriesSoFar: number }> = []
          const owned: Outcome[] = []
          const job = defineJob({
            name: "deliver",
            kind: "mapReduce",
            config: { heartbeatInterval: 30, workerTimeout: 200 },
            process: async (task, ctx) => {
              if (task.isRoot) return ctx.map([1, 2, 3, 4, 5], "n")
              return task.body
            },
            reduce: async (results) => {
              let sum = 0
              for await (const r of results) if (r.name === "n") sum += r.result as number
              return sum
            }
          })
          const cluster = yield* startCluster({
            job,
            store,
            owner: (outcome) => owned.push(outcome),
            transport: (base) => ({
              ...base,
              stop: (workerId, message) =>
                Effect.suspend(() => {
                  stops.push({ workerId, message, deliveriesSoFar: deliveries.length })
                  return base.stop(workerId, message)
                }),
              deliverOutcome: (instanceId, outcome) =>
                Effect.suspend(() => {
                  deliveries.push({ outcome, at: Date.now(), stored: store.instances.has(instanceId) })
                  if (deliveries.length <= 2)
                    return Effect.fail(new TransportError({ reason: "timeout", message: "owner busy" }))
                  return base.deliverOutcome(instanceId, outcome)
                })
            })
          })
          const outcome = yield* cluster.tracker.outcome.pipe(Effect.timeout(5_000))
          expect(outcome).toMatchObject({ ok: true, result: "15" })
          yield* cluster.tracker.released.pipe(Effect.timeout(5_000))

          // Sent three times, the same outcome each time, with a pause between tries.
          expect(deliveries).toHaveLength(3)
          for (const delivery of deliveries) expect(delivery.outcome).toEqual(outcome)
          expect(deliveries[1]!.at - deliveries[0]!.at).toBeGreaterThanOrEqual(30)
          // The owner got it once, when it accepted it.
          expect(owned).toEqual([outcome])
          // Until the owner had it, the instance stayed stored; then its tasks were deleted.
          expect(deliveries.map((delivery) => delivery.stored)).toEqual([true, true, true])
          expect(yield* store.load(cluster.instanceId)).toBeUndefined()
          expect(yield* store.readTasks(cluster.instanceId, ["0", "0.1", "0.F"])).toEqual([])
          // Every worker was told to stop the instance, and only after the owner accepted the outcome.
          const finished = stops.filter(
            (stop) => stop.message.taskIds === null && stop.message.reason === "instance finished"
          )
          expect(finished.map((stop) => stop.workerId).sort()).toEqual(["local", "worker-1", "worker-2"])
          expect(finished.every((stop) => stop.deliveriesSoFar === 3)).toBe(true)
          // A released tracker answers calls with unknown-instance.
          const error = yield* Effect.flip(
            cluster.tracker.heartbeat({
              instanceId: cluster.instanceId,
              workerId: "local",
              slots: 1,
              freeSlots: 1,
              queueLength: 0,
              idle: true
            })
          )
          expect(error).toMatchObject({ _tag: "RejectedError", reason: "unknown-instance" })
        })
      )
    ))
})

describe("outcome delivery across a restart", () => {
  it("R-FIN-6 R-REC-1 an outcome decided but not yet taken when the tracker stopped is sent again by the resumed tracker", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const store = makeMemoryStore()
          const job = defineJob({
            name: "redeliver",
            kind: "mapReduce",
            config: { heartbeatInterval: 30 },
            process: async (task, ctx) => (task.isRoot ? ctx.map([1, 2, 3], "n") : task.body),
            reduce: async (results) => {
              let sum = 0
              for await (const r of results) if (r.name === "n") sum += r.result as number
              return sum
            }
          })
          const refused: Outcome[] = []
          const cluster = yield* startCluster({
            job,
            store,
            transport: (base) => ({
              ...base,
              deliverOutcome: (_instanceId, outcome) =>
                Effect.suspend(() => {
                  refused.push(outcome)
                  return Effect.fail(new TransportError({ reason: "unreachable", message: "owner away" }))
                })
            })
          })
          const decided = yield* cluster.tracker.outcome
          yield* waitUntil(() => refused.length > 0, "a refused delivery")
          yield* closeScope(cluster.trackerScope)
          cluster.network.removeTracker(cluster.instanceId)
          expect((yield* store.load(cluster.instanceId))?.instance.outcome).toEqual(decided)

          const taken: Outcome[] = []
          const resumed = yield* resumeTracker(cluster.instanceId, "local-2").pipe(
            Effect.provideService(TaskStore, store),
            Effect.provideService(Transport, {
              ...cluster.transport,
              deliverOutcome: (_instanceId, outcome) => Effect.sync(() => void taken.push(outcome))
            })
          )
          yield* resumed.released.pipe(Effect.timeout("5 seconds"))
          expect(taken).toEqual([decided])
          expect(yield* resumed.outcome).toEqual(decided)
          expect(yield* store.load(cluster.instanceId)).toBeUndefined()
        })
      )
    ))
})
