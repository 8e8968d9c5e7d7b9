import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { defineJob, type MapReduceJob, type TaskResult } from "../src/index.ts"
import { cuttableLink, outcomeWithin, sleep, startCluster, waitUntil } from "./support.ts"

const N = 60
const LOST = "worker-2"

/** A mapReduce over 1..N where every sub-task says which worker ran it; worker-2 can be cut off the network. */
const scenario = (failover: boolean) =>
  Effect.gen(function* () {
    const started = new Map<string, string[]>()
    const running = new Map<string, Set<string>>()
    const reduced: TaskResult[] = []
    const jobFor = (worker: string): MapReduceJob =>
      defineJob({
        name: "failover",
        kind: "mapReduce",
        config: {
          taskRetries: 0,
          heartbeatInterval: 20,
          workerTimeout: 120,
          ackTimeout: 1_000,
          failover,
          runReduceIfFail: true
        },
        process: async (task, ctx) => {
          if (task.isRoot) {
            await ctx.map(
              Array.from({ length: N }, (_, i) => i + 1),
              "item"
            )
            return "mapped"
          }
          started.set(task.id, [...(started.get(task.id) ?? []), worker])
          const mine = running.get(worker) ?? new Set<string>()
          running.set(worker, mine)
          mine.add(task.id)
          await sleep(10)
          mine.delete(task.id)
          return { value: task.body as number, worker }
        },
        reduce: async (results) => {
          for await (const r of results) reduced.push(r)
          return reduced.length
        }
      })
    let cut = false
    const cluster = yield* startCluster({
      job: jobFor,
      workers: 3,
      slots: 4,
      link: (worker, base) => (worker === LOST ? cuttableLink(base, () => cut) : base)
    })
    yield* waitUntil(() => (running.get(LOST)?.size ?? 0) >= 2, "worker-2 running tasks")
    // worker-2 disappears: nothing reaches it, nothing it sends arrives.
    cut = true
    cluster.network.removeWorker(LOST)
    const heldAtCut = new Set(running.get(LOST))
    const outcome = yield* outcomeWithin(cluster.tracker)
    const progress = yield* cluster.tracker.progress
    // Stop the cut-off worker's report retries.
    cluster.workers.get(LOST)!.handle.stop({ instanceId: cluster.instanceId, taskIds: null, reason: "test over" })
    return { outcome, progress, heldAtCut, started, reduced }
  })

describe("a worker lost mid-run", () => {
  it("R-WORK-2 R-WORK-1 with failover its unfinished tasks go back to Waiting and run elsewhere; the instance succeeds and reduce counts each task once", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { outcome, progress, heldAtCut, started, reduced } = yield* scenario(true)
          expect(outcome.ok).toBe(true)
          expect(JSON.parse(outcome.result)).toBe(N + 1)
          expect(heldAtCut.size).toBeGreaterThanOrEqual(2)
          const subs = reduced.filter((r) => r.name === "item")
          expect(subs).toHaveLength(N)
          expect(new Set(subs.map((r) => r.taskId)).size).toBe(N)
          expect(subs.every((r) => r.ok)).toBe(true)
          expect(subs.reduce((sum, r) => sum + (r.result as { value: number }).value, 0)).toBe((N * (N + 1)) / 2)
          for (const id of heldAtCut) {
            // It ran again on a worker that is still there, and that run's result is the one counted.
            expect(
              started
                .get(id)
                ?.slice(1)
                .some((worker) => worker !== LOST)
            ).toBe(true)
            const result = subs.find((r) => r.taskId === id)?.result as { worker: string } | undefined
            expect(result?.worker).not.toBe(LOST)
          }
          expect(progress.byWorker[LOST]?.assigned).toBe(0)
          expect(progress.byName["item"]).toMatchObject({ total: N, succeeded: N, failed: 0 })
        })
      )
    ))

  it("R-WORK-2 with failover: false the lost worker's unfinished tasks fail with 'worker lost' and are not run again", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { outcome, heldAtCut, started, reduced } = yield* scenario(false)
          expect(outcome.ok).toBe(true)
          const failed = reduced.filter((r) => !r.ok)
          expect(heldAtCut.size).toBeGreaterThanOrEqual(2)
          expect(failed.length).toBeGreaterThanOrEqual(heldAtCut.size)
          expect(
            failed.every((r) => r.error?.reason === "worker-lost" && String(r.result).startsWith("worker lost"))
          ).toBe(true)
          for (const id of heldAtCut) {
            expect(failed.map((r) => r.taskId)).toContain(id)
            expect(started.get(id)).toEqual([LOST])
          }
          expect(reduced.filter((r) => r.name === "item")).toHaveLength(N)
        })
      )
    ))
})
