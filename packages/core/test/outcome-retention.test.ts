import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { defineJob } from "../src/index.ts"
import { makeMemoryOutcomeLog, makeMemoryStore, makeTrackerHost } from "../src/adapter.ts"

const job = defineJob({
  name: "kept",
  kind: "mapReduce",
  config: { taskRetries: 0 },
  process: async (task, ctx) => {
    if (task.isRoot) return ctx.map([1, 2, 3], "part")
    if (task.body === 2 && ctx.instanceId === "kept-2") throw new Error("two is bad here")
    return task.body
  },
  reduce: async () => "reduced"
})

describe("history of finished instances", () => {
  it("R-FIN-6 R-FIN-8 a finished instance keeps its outcome, counts, first errors and per-name summary after its tasks are deleted, within the retention", async () => {
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const store = makeMemoryStore()
          const host = yield* makeTrackerHost({ jobs: [job], store, outcomes: makeMemoryOutcomeLog({ maxRecords: 2 }) })
          for (const instanceId of ["kept-1", "kept-2", "kept-3"]) {
            const tracker = yield* host.start(job, { instanceId })
            yield* tracker.released
            // The host lets go of a released instance right after.
            while (host.live(instanceId) !== undefined) yield* Effect.sleep(5)
          }
          // The tasks are gone; the record is what answers.
          expect(store.instances.size).toBe(0)
          const listed = yield* host.list()
          expect(listed.map((entry) => [entry.instanceId, entry.state])).toEqual([
            ["kept-3", "succeeded"],
            ["kept-2", "failed"]
          ])
          const failed = yield* host.status("kept-2")
          expect(failed.outcome).toMatchObject({ ok: false, counts: { created: 4, succeeded: 3, failed: 1 } })
          expect(failed.outcome?.errors[0]).toMatchObject({ taskId: "0.2", name: "part" })
          expect(failed.byName["part"]).toMatchObject({ total: 3, succeeded: 2, failed: 1 })
          // Past maxRecords the oldest is gone.
          const gone = yield* Effect.flip(host.status("kept-1"))
          expect(gone).toMatchObject({ reason: "unknown-instance" })
        })
      )
    )
  })

  it("the memory log drops records of instances that finished longer ago than maxAgeMs", async () => {
    const log = makeMemoryOutcomeLog({ maxAgeMs: 1_000 })
    const record = (instanceId: string, finishedAt: number) =>
      ({
        instanceId,
        job: "kept",
        outcome: { ok: true, result: "", finishedAt, counts: { created: 0, succeeded: 0, failed: 0 }, errors: [] },
        progress: { instanceId, at: finishedAt, byName: {}, byWorker: {}, outcome: null }
      }) as const
    await Effect.runPromise(log.put(record("old", 1_000)))
    await Effect.runPromise(log.put(record("new", 5_000)))
    expect((await Effect.runPromise(log.list(10))).map((entry) => entry.instanceId)).toEqual(["new"])
  })
})
