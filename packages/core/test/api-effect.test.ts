import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { defineJob, runJobEffect, startJob, type TaskResult } from "../src/index.ts"
import { waitUntil } from "./support.ts"

const config = { heartbeatInterval: 30, workerTimeout: 200, taskRetries: 0 }

describe("processors that return an Effect", () => {
  it("API Effect processor: a process and a reduce returning Effects run, and their values are the results", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const job = defineJob({
          name: "effectful",
          kind: "mapReduce",
          config,
          process: (task, ctx) =>
            task.isRoot
              ? Effect.promise(() => ctx.map([1, 2, 3, 4, 5], "triple"))
              : Effect.gen(function* () {
                  yield* Effect.sleep(2)
                  return (task.body as number) * 3
                }),
          reduce: (results) =>
            Effect.gen(function* () {
              const all: TaskResult[] = yield* Effect.promise(async () => {
                const out: TaskResult[] = []
                for await (const r of results) out.push(r)
                return out
              })
              return all.filter((r) => r.name === "triple").reduce((sum, r) => sum + (r.result as number), 0)
            })
        })
        const result = yield* runJobEffect(job, { workers: 3 })
        expect(result.ok).toBe(true)
        expect(result.result).toBe(45)
        expect(result.progress.byName["triple"]).toMatchObject({ total: 5, succeeded: 5, failed: 0 })
      })
    ))

  it("API Effect processor R-RETRY-5: an Effect that fails fails its task with the error's tag and message (reduce sees it with runReduceIfFail)", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const job = defineJob({
          name: "effect-fails",
          kind: "mapReduce",
          config: { ...config, runReduceIfFail: true },
          process: (task, ctx) => {
            if (task.isRoot) return ctx.map(["good", "bad"], "step")
            return task.body === "bad" ? Effect.fail(new Error("bad input rejected")) : Effect.succeed("fine")
          },
          reduce: async (results) => {
            const seen: Array<[string, boolean, unknown, unknown]> = []
            for await (const r of results) if (r.name === "step") seen.push([r.taskId, r.ok, r.result, r.error ?? null])
            return seen
          }
        })
        const result = yield* runJobEffect(job, { workers: 2 })
        expect(result.ok).toBe(true)
        const seen = result.result as Array<[string, boolean, string, unknown]>
        expect(seen.map(([id, ok]) => [id, ok])).toEqual([
          ["0.1", true],
          ["0.2", false]
        ])
        expect(seen[0]![2]).toBe("fine")
        expect(seen[0]![3]).toBeNull()
        expect(seen[1]![2]).toBe("bad input rejected")
        expect(seen[1]![3]).toEqual({ tag: "Error", message: "bad input rejected" })
        expect(result.outcome.counts).toEqual({ created: 4, succeeded: 3, failed: 1 })
      })
    ))

  it("API Effect processor: killing the task interrupts its Effect (R-FIN-7)", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          let started = false
          let interrupted = false
          const job = defineJob({
            name: "effect-killed",
            kind: "mapReduce",
            config: { ...config, runReduceIfFail: true },
            process: (task, ctx) => {
              if (task.isRoot) return ctx.map(["forever"], "wait")
              return Effect.sync(() => {
                started = true
              }).pipe(
                Effect.andThen(Effect.never),
                Effect.onInterrupt(() =>
                  Effect.sync(() => {
                    interrupted = true
                  })
                )
              )
            },
            reduce: async (results) => {
              const out: Array<[string, boolean, unknown, unknown]> = []
              for await (const r of results) out.push([r.taskId, r.ok, r.result, r.error?.reason ?? null])
              return out
            }
          })
          const handle = yield* startJob(job, { workers: 2 })
          yield* waitUntil(() => started, "the Effect running")
          yield* handle.tracker.kill("0.1", "taking too long")
          const result = yield* handle.result.pipe(Effect.timeout(3_000))
          yield* waitUntil(() => interrupted, "the Effect interrupted", 1_000)
          expect(result.ok).toBe(true)
          expect(result.result).toEqual([
            ["0", true, 1, null],
            ["0.1", false, "killed: taking too long", "killed"]
          ])
        })
      )
    ))
})
