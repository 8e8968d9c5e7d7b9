import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { defineJob, startJob, type JobConfigOverrides } from "../src/index.ts"
import { makeMemoryStore, type RunRecord } from "../src/adapter.ts"
import { aborted, sleep, waitUntil } from "./support.ts"

const base: JobConfigOverrides = { heartbeatInterval: 30, workerTimeout: 300 }

/** A standalone frequent job whose root records every start; `work` is what each sub-instance does. */
const frequentJob = (
  config: JobConfigOverrides,
  work: (signal: AbortSignal) => Promise<unknown> | unknown = () => "tick"
) => {
  const starts: Array<{ id: string; at: number }> = []
  let running = 0
  let maxRunning = 0
  const job = defineJob({
    name: "frequent",
    kind: "standalone",
    config: { ...base, ...config },
    process: async (task, ctx) => {
      starts.push({ id: task.id, at: performance.now() })
      running++
      maxRunning = Math.max(maxRunning, running)
      try {
        return await work(ctx.signal)
      } finally {
        running--
      }
    }
  })
  return { job, starts, maxRunning: () => maxRunning }
}

const historyOf = (store: ReturnType<typeof makeMemoryStore>, instanceId: string): ReadonlyArray<RunRecord> =>
  store.instances.get(instanceId)?.instance.history ?? []

describe("frequent jobs in process", () => {
  it("R-FREQ-1 R-FREQ-3 a fixedRate job (up to 3 at once, so a slow one skips nothing) runs a sub-instance every 50 ms with root '<n>', keeps the last 10 as history, and only ends on kill", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const store = makeMemoryStore()
          const { job, starts } = frequentJob({
            frequent: { mode: "fixedRate", everyMs: 50 },
            maxConcurrentSubInstances: 3
          })
          const handle = yield* startJob(job, { workers: 1, store })
          yield* waitUntil(() => starts.length >= 13, "13 sub-instances", 3_000)
          // Each trigger is its own sub-instance with root "<n>", numbered from 1.
          expect(starts.map((start) => start.id)).toEqual(starts.map((_, i) => String(i + 1)))
          // fixedRate: the period is kept on average (no drift from the run's own time).
          const period = (starts[starts.length - 1]!.at - starts[0]!.at) / (starts.length - 1)
          expect(period).toBeGreaterThanOrEqual(40)
          expect(period).toBeLessThanOrEqual(80)
          // It is still going: only a kill ends it.
          expect((yield* handle.progress).outcome).toBeNull()
          const history = historyOf(store, handle.instanceId)
          expect(history).toHaveLength(10)
          const runs = history.map((record) => record.run)
          expect(runs).toEqual(runs.map((_, i) => runs[0]! + i))
          expect(runs[0]).toBeGreaterThan(1)
          expect(
            history.every((record) => record.status === "succeeded" && record.result === JSON.stringify("tick"))
          ).toBe(true)

          yield* handle.kill("enough")
          const result = yield* handle.result.pipe(Effect.timeout(2_000))
          expect(result.ok).toBe(false)
          expect(result.outcome.result).toBe("enough")
          const count = starts.length
          yield* Effect.promise(() => sleep(150))
          expect(starts.length).toBe(count)
        })
      )
    ))

  it("R-FREQ-2 with maxConcurrentSubInstances 1 a trigger while a sub-instance runs is recorded as skipped", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const store = makeMemoryStore()
          const { job, starts, maxRunning } = frequentJob(
            { frequent: { mode: "fixedRate", everyMs: 50 }, maxConcurrentSubInstances: 1 },
            () => sleep(120).then(() => "slow")
          )
          const handle = yield* startJob(job, { workers: 1, store })
          yield* waitUntil(() => starts.length >= 3, "3 sub-instances", 3_000)
          const history = historyOf(store, handle.instanceId)
          const skipped = history.filter((record) => record.status === "skipped")
          expect(skipped.length).toBeGreaterThanOrEqual(2)
          expect(skipped.every((record) => record.result === "too many sub-instances running")).toBe(true)
          expect(maxRunning()).toBe(1)
          // Skipped triggers use up a sub-instance number but run no root.
          const ran = new Set(starts.map((start) => Number(start.id)))
          for (const record of skipped) expect(ran.has(record.run)).toBe(false)
          yield* handle.kill("stop")
          expect((yield* handle.result.pipe(Effect.timeout(2_000))).ok).toBe(false)
        })
      )
    ))

  it("R-FREQ-1 fixedDelay waits the gap after the previous sub-instance ends", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { job, starts } = frequentJob({ frequent: { mode: "fixedDelay", everyMs: 50 } }, () =>
            sleep(30).then(() => "done")
          )
          const handle = yield* startJob(job, { workers: 1 })
          yield* waitUntil(() => starts.length >= 4, "4 sub-instances", 3_000)
          for (let i = 1; i < starts.length; i++) {
            // 30 ms of work, then a 50 ms gap: never closer than that (a few ms of timer slack allowed).
            expect(starts[i]!.at - starts[i - 1]!.at).toBeGreaterThanOrEqual(75)
          }
          yield* handle.kill("stop")
        })
      )
    ))

  it("R-FREQ-3 a sub-instance over its timeout fails (its task is told to stop) and the job goes on", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const store = makeMemoryStore()
          const reasons: unknown[] = []
          const { job, starts } = frequentJob(
            { frequent: { mode: "fixedRate", everyMs: 60 }, instanceTimeout: 25 },
            async (signal) => {
              reasons.push(await aborted(signal))
              return "late"
            }
          )
          const handle = yield* startJob(job, { workers: 1, store })
          yield* waitUntil(
            () => historyOf(store, handle.instanceId).filter((r) => r.status === "failed").length >= 2,
            "2 timed-out runs",
            3_000
          )
          const failed = historyOf(store, handle.instanceId).filter((r) => r.status === "failed")
          expect(failed.every((record) => record.result === "timed out")).toBe(true)
          expect(reasons.slice(0, 2)).toEqual(["timed out", "timed out"])
          expect(starts.length).toBeGreaterThanOrEqual(2)
          expect((yield* handle.progress).outcome).toBeNull()
          yield* handle.kill("stop")
          expect((yield* handle.result.pipe(Effect.timeout(2_000))).outcome.result).toBe("stop")
        })
      )
    ))
})
