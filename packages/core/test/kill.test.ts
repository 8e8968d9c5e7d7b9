import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { defineJob, startJob, type TaskResult } from "../src/index.ts"
import { aborted, counter, waitUntil } from "./support.ts"

const config = { heartbeatInterval: 30, workerTimeout: 200 }

describe("kill", () => {
  it("R-FIN-7 killing the instance aborts running tasks' signals, fails them with 'killed', fails the instance with the reason and runs no reduce", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const started = new Set<string>()
          const reasons = new Map<string, unknown>()
          let reduceRuns = 0
          const job = defineJob({
            name: "kill-all",
            kind: "mapReduce",
            // even a job that reduces despite failures runs no reduce once killed
            config: { ...config, runReduceIfFail: true },
            process: async (task, ctx) => {
              if (task.isRoot) {
                await ctx.map([1, 2, 3, 4, 5, 6], "slow")
                return "mapped"
              }
              started.add(task.id)
              reasons.set(task.id, await aborted(ctx.signal))
              return "stopped"
            },
            reduce: () => {
              reduceRuns++
              return "reduced"
            }
          })
          const handle = yield* startJob(job, { workers: 3 })
          yield* waitUntil(() => started.size === 6, "all 6 sub-tasks running")
          yield* handle.kill("operator said stop")
          const result = yield* handle.result.pipe(Effect.timeout(5_000))
          expect(result.ok).toBe(false)
          expect(result.outcome.result).toBe("operator said stop")
          expect(result.outcome.counts).toMatchObject({ failed: 6 })
          expect(result.outcome.errors.map((e) => e.error)).toContainEqual({
            tag: "TaskfoldError",
            reason: "killed",
            message: "killed: operator said stop"
          })
          yield* waitUntil(() => reasons.size === 6, "every running task saw its signal abort", 2_000)
          expect([...reasons.values()]).toEqual(Array(6).fill("operator said stop"))
          expect(reduceRuns).toBe(0)
          expect(result.progress.byName["slow"]).toMatchObject({ total: 6, succeeded: 0, failed: 6, running: 0 })
          expect(result.progress.byName["FINAL"]).toBeUndefined()
          yield* Effect.sleep(50)
          expect(reduceRuns).toBe(0)
        })
      )
    ))

  it("R-FIN-7 killing one task aborts its signal and fails it with 'killed' (no retry); the rest of the instance goes on (reduce with runReduceIfFail)", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const runs = counter()
          let reason: unknown
          const reduced: TaskResult[] = []
          const job = defineJob({
            name: "kill-one",
            kind: "mapReduce",
            config: { ...config, taskRetries: 3, retryBackoff: { kind: "fixed", ms: 0 }, runReduceIfFail: true },
            process: async (task, ctx) => {
              runs.add(task.id)
              if (task.isRoot) {
                await ctx.map([1, 2, 3, 4], "part")
                return "mapped"
              }
              if (task.id === "0.3") {
                reason = await aborted(ctx.signal)
                return "ignored"
              }
              return task.body
            },
            reduce: async (results) => {
              for await (const r of results) reduced.push(r)
              return reduced.length
            }
          })
          const handle = yield* startJob(job, { workers: 2 })
          yield* waitUntil(() => runs.get("0.3") === 1, "0.3 running")
          const unknown = yield* Effect.flip(handle.tracker.kill("0.42", "no such task"))
          expect(unknown).toMatchObject({ _tag: "RejectedError", reason: "unknown-task" })
          yield* handle.tracker.kill("0.3", "too slow")
          const result = yield* handle.result.pipe(Effect.timeout(5_000))
          expect(result.ok).toBe(true)
          expect(result.result).toBe(5)
          expect(reason).toBe("too slow")
          expect(runs.get("0.3")).toBe(1)
          expect(reduced.map((r) => [r.taskId, r.ok, r.result])).toEqual([
            ["0", true, "mapped"],
            ["0.1", true, 1],
            ["0.2", true, 2],
            ["0.3", false, "killed: too slow"],
            ["0.4", true, 4]
          ])
          expect(result.progress.byName["part"]).toMatchObject({ total: 4, succeeded: 3, failed: 1 })
          expect(reduced.find((r) => r.taskId === "0.3")!.error).toEqual({
            tag: "TaskfoldError",
            reason: "killed",
            message: "killed: too slow"
          })
        })
      )
    ))
})
