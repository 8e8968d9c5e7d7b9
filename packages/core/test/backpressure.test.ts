import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { defineJob, type Progress } from "../src/index.ts"
import { outcomeWithin, sleep, startCluster } from "./support.ts"

const CALLS = 20
const PER_CALL = 50
const TOTAL = CALLS * PER_CALL

/** A root that maps 1..1000 in 20 calls of 50, timing each call; sub-tasks take about a millisecond. */
const run = (maxWaitingTasks: number) =>
  Effect.gen(function* () {
    const pushes: Progress[] = []
    const callMs: number[] = []
    const job = defineJob({
      name: "backpressure",
      kind: "mapReduce",
      config: {
        maxWaitingTasks,
        queueAllowance: 0,
        progressInterval: 2,
        heartbeatInterval: 30,
        workerTimeout: 500,
        taskRetries: 0
      },
      process: async (task, ctx) => {
        if (task.isRoot) {
          for (let call = 0; call < CALLS; call++) {
            const items = Array.from({ length: PER_CALL }, (_, i) => call * PER_CALL + i + 1)
            const from = performance.now()
            await ctx.map(items, "item")
            callMs.push(performance.now() - from)
          }
          return "mapped"
        }
        await sleep(1)
        return task.body
      },
      reduce: async (results) => {
        let sum = 0
        let count = 0
        for await (const r of results) {
          count++
          if (r.name === "item") sum += r.result as number
        }
        return { sum, count }
      }
    })
    const cluster = yield* startCluster({ job, workers: 2, slots: 4, onProgress: (progress) => pushes.push(progress) })
    const outcome = yield* outcomeWithin(cluster.tracker, 10_000)
    const waiting = pushes.map((progress) => progress.byName["item"]?.waiting ?? 0)
    return { outcome, pushes, waiting, callMs }
  })

describe("back-pressure on map", () => {
  it("R-MAP-4 with maxWaitingTasks 50, 1,000 items mapped in 20 calls of 50 succeed and waiting never passes the bound plus one call", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const { outcome, pushes, waiting, callMs } = yield* Effect.scoped(run(50))
        expect(outcome.ok).toBe(true)
        expect(JSON.parse(outcome.result)).toEqual({ sum: (TOTAL * (TOTAL + 1)) / 2, count: TOTAL + 1 })
        expect(callMs).toHaveLength(CALLS)
        expect(pushes.length).toBeGreaterThanOrEqual(10)
        for (const value of waiting) expect(value).toBeLessThanOrEqual(50 + PER_CALL)
        // The bound was reached, so later calls had to wait for the dispatcher to drain.
        expect(Math.max(...waiting)).toBeGreaterThan(50)
        const last = pushes[pushes.length - 1]!
        expect(last.byName["item"]).toMatchObject({ total: TOTAL, succeeded: TOTAL, waiting: 0 })
        // Suspended calls returned only once about 25 tasks (1 ms each, 8 slots) had drained: several ms each.
        expect(callMs.filter((ms) => ms >= 2).length).toBeGreaterThanOrEqual(CALLS / 2)
      })
    ))

  it("R-MAP-4 (control) without the bound the same job holds far more than 100 waiting tasks, so the bound above is what kept it low", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const { outcome, waiting } = yield* Effect.scoped(run(100_000))
        expect(outcome.ok).toBe(true)
        expect(Math.max(...waiting)).toBeGreaterThan(50 + PER_CALL)
      })
    ))
})
