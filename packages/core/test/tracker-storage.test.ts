import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { defineJob, StoreError } from "../src/index.ts"
import {
  makeMemoryStore,
  type ReportBatch,
  type TaskStoreShape,
  type TrackerLink,
  type WriteBatch
} from "../src/adapter.ts"
import { outcomeWithin, startCluster, waitUntil } from "./support.ts"

/** A memory store whose apply fails on demand: `failNext` times in a row, or always once `failAlways` is set. */
const flakyStore = () => {
  const base = makeMemoryStore()
  const control = {
    failNext: 0,
    failAlways: false,
    failures: 0,
    calls: [] as Array<{ batch: WriteBatch; failed: boolean }>
  }
  const store: TaskStoreShape = {
    ...base,
    apply: (batch) =>
      Effect.suspend(() => {
        const fail = control.failAlways || control.failNext > 0
        control.calls.push({ batch, failed: fail })
        if (!fail) return base.apply(batch)
        if (control.failNext > 0) control.failNext--
        control.failures++
        return Effect.fail(new StoreError({ reason: "unavailable", message: "disk on fire" }))
      })
  }
  return { base, store, control }
}

const N = 20
const expectedSum = (N * (N + 1)) / 2

/** A mapReduce job that maps 1..N and sums them; `onSub` runs in every sub-task before it returns. */
const sumJob = (beforeMap: () => void, onSub: (id: string) => void = () => {}) =>
  defineJob({
    name: "storage-sum",
    kind: "mapReduce",
    config: { taskRetries: 0, heartbeatInterval: 30, workerTimeout: 200, ackTimeout: 500 },
    process: async (task, ctx) => {
      if (task.isRoot) {
        beforeMap()
        await ctx.map(
          Array.from({ length: N }, (_, i) => i + 1),
          "add"
        )
        return "mapped"
      }
      onSub(task.id)
      return task.body as number
    },
    reduce: async (results) => {
      let sum = 0
      let count = 0
      for await (const r of results) {
        count++
        if (r.name === "add" && r.ok) sum += r.result as number
      }
      return { sum, count }
    }
  })

describe("tracker and a failing store", () => {
  for (const failures of [2, 3]) {
    it(`R-RETRY-4 a write that fails ${failures} times in a row is retried and the instance succeeds with the right result`, () =>
      Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const { store, control } = flakyStore()
            // The next write after the root starts fails `failures` times in a row, then goes through.
            const job = sumJob(() => {
              control.failNext = failures
            })
            const cluster = yield* startCluster({ job, store })
            const outcome = yield* outcomeWithin(cluster.tracker)
            expect(control.failures).toBe(failures)
            expect(outcome.ok).toBe(true)
            expect(JSON.parse(outcome.result)).toEqual({ sum: expectedSum, count: N + 1 })
            const progress = yield* cluster.tracker.progress
            expect(progress.byName["add"]).toMatchObject({ total: N, succeeded: N, failed: 0 })
          })
        )
      ))
  }

  it("R-RETRY-4 R-MAP-6 a write that keeps failing is tried 4 times, the map caller gets an error (not success) and the instance fails with 'storage failure' and the cause", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { store, control } = flakyStore()
          let mapError: unknown
          const job = defineJob({
            name: "storage-map-fails",
            kind: "mapReduce",
            config: { taskRetries: 0, heartbeatInterval: 30, workerTimeout: 200 },
            process: async (task, ctx) => {
              if (!task.isRoot) return 1
              // Let the root's Running report be stored first: the map call's write is the first to fail.
              await new Promise((resolve) => setTimeout(resolve, 30))
              control.failAlways = true
              try {
                await ctx.map([4, 5, 6], "second")
              } catch (error) {
                mapError = error
              }
              return "root done"
            },
            reduce: () => "reduced"
          })
          const owned: unknown[] = []
          const cluster = yield* startCluster({ job, store, owner: (outcome) => owned.push(outcome) })
          const outcome = yield* outcomeWithin(cluster.tracker)
          expect(outcome.ok).toBe(false)
          expect(outcome.result.startsWith("storage failure")).toBe(true)
          expect(outcome.result).toContain("disk on fire")
          // The caller of the failed step gets an error, not silence and not success. The store's error was an
          // answer that created nothing, so the worker may send the call again (R-MAP-6): then it gets the store's
          // error once its task is stopped, or the finished (or released) tracker's refusal, whichever comes first.
          yield* waitUntil(() => mapError !== undefined, "the map call settled", 3_000)
          expect(mapError).toBeInstanceOf(Error)
          const settled = mapError as Error & { reason?: string }
          if (settled.name === "StoreError") expect(settled.message).toContain("disk on fire")
          else
            expect(settled).toMatchObject({
              name: "RejectedError",
              reason: expect.stringMatching(/^(instance-finished|unknown-instance)$/)
            })
          // The first failing batch was tried once and retried 3 times, then given up.
          const firstFailing = control.calls.findIndex((call) => call.failed)
          expect(firstFailing).toBeGreaterThanOrEqual(0)
          const batch = control.calls[firstFailing]?.batch
          const tries = control.calls.slice(firstFailing).filter((call) => call.batch === batch).length
          expect(tries).toBe(4)
          // Nothing of the failed step was stored: no child of the second map call exists.
          expect(batch?.inserts.map((row) => row.name)).toContain("second")
          const rows = yield* store.readTasks(cluster.instanceId, ["0.4", "0.5", "0.6"])
          expect(rows).toEqual([])
          // The outcome still reaches the owner and the tracker lets go.
          yield* cluster.tracker.released.pipe(Effect.timeout(2_000))
          expect(owned).toEqual([outcome])
        })
      )
    ))

  it("R-RETRY-4 a report whose write keeps failing is answered with the error (never dropped silently) and the instance fails with 'storage failure'", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { store, control } = flakyStore()
          const job = sumJob(
            () => {},
            (id) => {
              if (id === "0.3") control.failAlways = true
            }
          )
          const reportCalls: Array<{ batch: ReportBatch; ok: boolean; error: string | undefined }> = []
          const recording = (base: TrackerLink): TrackerLink => ({
            ...base,
            report: (batch) =>
              base.report(batch).pipe(
                Effect.onExit((exit) =>
                  Effect.sync(() =>
                    reportCalls.push({
                      batch,
                      ok: Exit.isSuccess(exit),
                      error: Exit.isFailure(exit) ? String(exit.cause) : undefined
                    })
                  )
                )
              )
          })
          const cluster = yield* startCluster({ job, store, link: (_id, base) => recording(base) })
          const outcome = yield* outcomeWithin(cluster.tracker)
          expect(outcome.ok).toBe(false)
          expect(outcome.result).toMatch(/^storage failure: .*disk on fire/)
          // The report whose write failed was answered with the store's error: its sender knows.
          const failedCalls = reportCalls.filter((call) => !call.ok)
          expect(failedCalls.length).toBeGreaterThanOrEqual(1)
          expect(failedCalls.every((call) => call.error?.includes("disk on fire"))).toBe(true)
          // 0.3's success never reached the store: the step that carried it (or a later one) failed.
          const rows = yield* store.readTasks(cluster.instanceId, ["0.3"])
          expect(rows).toHaveLength(1)
          expect(rows[0]?.status).not.toBe(6)
        })
      )
    ))
})
