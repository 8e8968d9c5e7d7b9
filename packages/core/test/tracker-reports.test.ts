import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { defineJob, RejectedError, TransportError } from "../src/index.ts"
import { makeMemoryStore, TaskStatus } from "../src/adapter.ts"
import { LOCAL, outcomeWithin, startCluster, waitUntil } from "./support.ts"

/**
 * A mapReduce instance on the local worker alone: the root maps 0.1..0.3; 0.1 and 0.2 finish at once,
 * 0.3 waits for `release`, so the instance stays live while the test sends reports by hand.
 */
const heldInstance = Effect.gen(function* () {
  const store = makeMemoryStore()
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  const job = defineJob({
    name: "held-reports",
    kind: "mapReduce",
    config: { taskRetries: 1, retryBackoff: { kind: "fixed", ms: 0 }, heartbeatInterval: 30, workerTimeout: 200 },
    process: async (task, ctx) => {
      if (task.isRoot) {
        await ctx.map([10, 20, 30], "part")
        return "mapped"
      }
      if (task.id === "0.3") await gate
      return task.body
    },
    reduce: async (results) => {
      const seen: Array<[string, boolean, unknown]> = []
      for await (const r of results) seen.push([r.taskId, r.ok, r.result])
      return seen
    }
  })
  const cluster = yield* startCluster({ job, store, workers: 1 })
  const rowOf = (id: string) => store.instances.get(cluster.instanceId)?.byId.get(id)
  yield* waitUntil(
    () =>
      rowOf("0")?.status === TaskStatus.Succeeded &&
      rowOf("0.1")?.status === TaskStatus.Succeeded &&
      rowOf("0.2")?.status === TaskStatus.Succeeded &&
      rowOf("0.3")?.status === TaskStatus.Received,
    "root, 0.1 and 0.2 stored as succeeded, 0.3 received (its batch was taken)"
  )
  const snapshot = () => {
    const stored = store.instances.get(cluster.instanceId)
    return JSON.stringify({ instance: stored?.instance, rows: [...(stored?.byId.values() ?? [])] })
  }
  return { cluster, store, release, snapshot, rowOf }
})

describe("tracker: reports it cannot apply", () => {
  it("R-STATE-4 a report for an unknown task is rejected with reason unknown-task and changes nothing", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { cluster, release, snapshot } = yield* heldInstance
          const before = snapshot()
          const reply = yield* cluster.tracker.report({
            instanceId: cluster.instanceId,
            workerId: LOCAL,
            reports: [
              { taskId: "0.99", attempt: 0, status: TaskStatus.Succeeded, result: "1" },
              { taskId: "7", attempt: 0, status: TaskStatus.Failed, error: "boom" }
            ]
          })
          expect(reply.applied).toBe(0)
          expect(reply.dropped).toBe(0)
          expect(reply.unknown).toEqual([])
          expect(reply.rejected.map((entry) => [entry.taskId, entry.error.reason])).toEqual([
            ["0.99", "unknown-task"],
            ["7", "unknown-task"]
          ])
          expect(reply.rejected[0]?.error).toBeInstanceOf(RejectedError)
          expect(reply.rejected[0]?.error.message).toContain("0.99")
          expect(snapshot()).toBe(before)
          release()
          const outcome = yield* outcomeWithin(cluster.tracker)
          expect(outcome.ok).toBe(true)
          const progress = yield* cluster.tracker.progress
          expect(progress.byName["part"]).toMatchObject({ total: 3, succeeded: 3, failed: 0 })
          expect(Object.keys(progress.byName).sort()).toEqual(["FINAL", "ROOT", "part"])
        })
      )
    ))

  it("R-STATE-4 R-STATE-3 a repeated report for a task already terminal (evicted from memory) is counted as dropped, not rejected, and changes nothing", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { cluster, release, snapshot } = yield* heldInstance
          const before = snapshot()
          const reply = yield* cluster.tracker.report({
            instanceId: cluster.instanceId,
            workerId: LOCAL,
            reports: [
              // The same success again, with another value: no second result.
              { taskId: "0.1", attempt: 0, status: TaskStatus.Succeeded, result: "999" },
              // A late failure of a task that succeeded: no retry, no failure counted.
              { taskId: "0.2", attempt: 0, status: TaskStatus.Failed, error: "late failure" }
            ]
          })
          expect(reply).toMatchObject({ applied: 0, dropped: 2, unknown: [], rejected: [] })
          expect(snapshot()).toBe(before)
          release()
          const outcome = yield* outcomeWithin(cluster.tracker)
          expect(outcome.ok).toBe(true)
          expect(JSON.parse(outcome.result)).toEqual([
            ["0", true, "mapped"],
            ["0.1", true, 10],
            ["0.2", true, 20],
            ["0.3", true, 30]
          ])
        })
      )
    ))

  it("R-STATE-4 a report for an unknown instance is refused by the network and changes nothing", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { cluster, release, snapshot } = yield* heldInstance
          const before = snapshot()
          const error = yield* Effect.flip(
            cluster.network.link("no-such-instance").report({
              instanceId: "no-such-instance",
              workerId: LOCAL,
              reports: [{ taskId: "0.3", attempt: 0, status: TaskStatus.Succeeded, result: "666" }]
            })
          )
          expect(error).toBeInstanceOf(TransportError)
          expect(error.reason).toBe("unreachable")
          expect(error.message).toContain("no-such-instance")
          expect(snapshot()).toBe(before)
          release()
          expect((yield* outcomeWithin(cluster.tracker)).ok).toBe(true)
        })
      )
    ))

  // Task ids like "0.3" exist in every instance: only the instance id keeps another instance's report out.
  it("R-STATE-4 a report naming another instance is rejected by the tracker and changes nothing", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { cluster, release, snapshot, rowOf } = yield* heldInstance
          const before = snapshot()
          const exit = yield* Effect.exit(
            cluster.tracker.report({
              instanceId: "some-other-instance",
              workerId: LOCAL,
              reports: [{ taskId: "0.3", attempt: 0, status: TaskStatus.Succeeded, result: "666" }]
            })
          )
          const refused =
            Exit.isFailure(exit) ||
            (Exit.isSuccess(exit) &&
              exit.value.applied === 0 &&
              exit.value.rejected.some((entry) => entry.error.reason === "unknown-instance"))
          expect(rowOf("0.3")?.result).not.toBe("666")
          expect(snapshot()).toBe(before)
          expect(refused).toBe(true)
          release()
        })
      )
    ))
})
