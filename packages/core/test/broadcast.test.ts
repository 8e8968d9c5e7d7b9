import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { defineJob, type BroadcastJob, type TaskResult } from "../src/index.ts"
import { LOCAL, outcomeWithin, startCluster } from "./support.ts"

const config = { heartbeatInterval: 30, workerTimeout: 200, taskRetries: 0 }

/** Records which worker ran which step: every worker gets its own job object, a closure over its id. */
const recorder = () => {
  const pre: string[] = []
  const processed: Array<{ worker: string; taskId: string; body: unknown }> = []
  const post: Array<{ worker: string; results: TaskResult[] }> = []
  return { pre, processed, post }
}

describe("broadcast end to end", () => {
  it("R-BC-1 R-BC-2 preProcess runs once on the local worker, process once on each of 3 workers with its result, postProcess gets every result", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const seen = recorder()
          const jobFor = (worker: string): BroadcastJob =>
            defineJob({
              name: "bc",
              kind: "broadcast",
              config,
              preProcess: () => {
                seen.pre.push(worker)
                return { token: "prepared" }
              },
              process: (task) => {
                seen.processed.push({ worker, taskId: task.id, body: task.body })
                return `done on ${worker}`
              },
              postProcess: async (results) => {
                const all: TaskResult[] = []
                for await (const r of results) all.push(r)
                seen.post.push({ worker, results: all })
                return all.filter((r) => r.name === "BROADCAST").map((r) => r.result)
              }
            })
          const cluster = yield* startCluster({ job: jobFor, workers: 3 })
          const outcome = yield* outcomeWithin(cluster.tracker)
          expect(outcome.ok).toBe(true)
          expect(seen.pre).toEqual([LOCAL])
          expect(seen.processed.map((p) => p.worker).sort()).toEqual([LOCAL, "worker-1", "worker-2"])
          expect(new Set(seen.processed.map((p) => p.taskId)).size).toBe(3)
          expect(seen.processed.every((p) => JSON.stringify(p.body) === JSON.stringify({ token: "prepared" }))).toBe(
            true
          )
          expect(seen.post).toHaveLength(1)
          expect(seen.post[0]!.worker).toBe(LOCAL)
          const results = seen.post[0]!.results
          expect(results.map((r) => r.name)).toEqual(["ROOT", "BROADCAST", "BROADCAST", "BROADCAST"])
          expect(results.every((r) => r.ok)).toBe(true)
          expect(
            results
              .slice(1)
              .map((r) => r.result as string)
              .sort()
          ).toEqual([`done on ${LOCAL}`, "done on worker-1", "done on worker-2"])
          expect((JSON.parse(outcome.result) as string[]).sort()).toEqual([
            `done on ${LOCAL}`,
            "done on worker-1",
            "done on worker-2"
          ])
          const progress = yield* cluster.tracker.progress
          for (const worker of [LOCAL, "worker-1", "worker-2"])
            expect(progress.byWorker[worker]?.succeeded).toBeGreaterThanOrEqual(1)
        })
      )
    ))

  it("R-BC-2 R-FIN-3 a broadcast task that throws fails the instance without postProcess (runReduceIfFail false by default), naming the error", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const ran: string[] = []
          let posted = 0
          const jobFor = (worker: string): BroadcastJob =>
            defineJob({
              name: "bc-fail",
              kind: "broadcast",
              config,
              process: () => {
                ran.push(worker)
                if (worker === "worker-2") throw new Error("disk full on worker-2")
                return "ok"
              },
              postProcess: () => {
                posted++
                return "posted"
              }
            })
          const cluster = yield* startCluster({ job: jobFor, workers: 3 })
          const outcome = yield* outcomeWithin(cluster.tracker)
          expect(ran.sort()).toEqual([LOCAL, "worker-1", "worker-2"])
          expect(posted).toBe(0)
          expect(outcome.ok).toBe(false)
          expect(outcome.result).toMatch(
            new RegExp(
              /^total: 4, succeeded: 3, failed: 1; 1 of 4 tasks failed, postProcess skipped; /.source +
                /first errors: 0\.\d \(BROADCAST, attempt 0\): Error: disk full on worker-2$/.source
            )
          )
          expect(outcome.counts).toEqual({ created: 4, succeeded: 3, failed: 1 })
          expect(outcome.errors).toEqual([
            {
              taskId: expect.stringMatching(/^0\.\d$/),
              name: "BROADCAST",
              attempt: 0,
              error: { tag: "Error", message: "disk full on worker-2" }
            }
          ])
        })
      )
    ))

  it("R-BC-2 with runReduceIfFail, the default postProcess fails the instance when one broadcast task throws, with 'succeeded: S, failed: F'", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const jobFor = (worker: string): BroadcastJob =>
            defineJob({
              name: "bc-fail-post",
              kind: "broadcast",
              config: { ...config, runReduceIfFail: true },
              process: () => {
                if (worker === "worker-2") throw new Error("disk full on worker-2")
                return "ok"
              }
            })
          const cluster = yield* startCluster({ job: jobFor, workers: 3 })
          const outcome = yield* outcomeWithin(cluster.tracker)
          expect(outcome.ok).toBe(false)
          // The root (preProcess) counts as a task (docs/decisions.md): 1 root + 2 broadcast succeeded.
          expect(outcome.result).toBe("Error: succeeded: 3, failed: 1")
          // the final task (postProcess) failed too: 5 tasks, 2 failed
          expect(outcome.counts).toEqual({ created: 5, succeeded: 3, failed: 2 })
          expect(outcome.errors.map((e) => [e.name, e.error.message])).toEqual([
            ["BROADCAST", "disk full on worker-2"],
            ["FINAL", "succeeded: 3, failed: 1"]
          ])
        })
      )
    ))

  it("R-BC-2 the default postProcess succeeds with the counts when no task failed", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const job = defineJob({ name: "bc-ok", kind: "broadcast", config, process: () => "fine" })
          const cluster = yield* startCluster({ job, workers: 3 })
          const outcome = yield* outcomeWithin(cluster.tracker)
          expect(outcome.ok).toBe(true)
          expect(JSON.parse(outcome.result)).toBe("succeeded: 4, failed: 0")
          expect(outcome).toMatchObject({ counts: { created: 5, succeeded: 5, failed: 0 }, errors: [] })
        })
      )
    ))

  it("R-BC-1 a failing preProcess creates no broadcast task: process never runs and the instance fails", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          let processed = 0
          const job = defineJob({
            name: "bc-pre-fails",
            kind: "broadcast",
            config,
            preProcess: () => {
              throw new Error("no input")
            },
            process: () => {
              processed++
              return "never"
            }
          })
          const cluster = yield* startCluster({ job, workers: 3 })
          const outcome = yield* outcomeWithin(cluster.tracker)
          expect(processed).toBe(0)
          expect(outcome.ok).toBe(false)
          expect(outcome.result).toBe(
            "total: 1, succeeded: 0, failed: 1; 1 of 1 tasks failed, postProcess skipped; " +
              "first errors: 0 (ROOT, attempt 0): Error: no input"
          )
          expect(outcome.counts).toEqual({ created: 1, succeeded: 0, failed: 1 })
          const progress = yield* cluster.tracker.progress
          expect(progress.byName["BROADCAST"]).toBeUndefined()
        })
      )
    ))
})
