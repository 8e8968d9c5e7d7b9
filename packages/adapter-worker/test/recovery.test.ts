import { evictDurableObject, runInDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { finished, submit, trackerOf, waitUntil } from "./support.ts"
import { watch, type TaskfoldTracker } from "./worker.ts"

/** Ids of the tasks the object's SQLite holds as terminal. */
const terminalIds = (instanceId: string): Promise<string[]> =>
  runInDurableObject(trackerOf(instanceId), (_object: TaskfoldTracker, state) =>
    state.storage.sql
      .exec<{ id: string }>("SELECT id FROM taskfold_tasks WHERE status >= 5")
      .toArray()
      .map((row) => row.id)
  )

describe("eviction", () => {
  it("R-REC-1 R-REC-2 the object is evicted mid-run and resumes from SQLite: the instance succeeds, no terminal task runs again, reduce sees every task once", async () => {
    const n = 600
    const instanceId = await submit("counted", { n, ms: 40 }, { heartbeatInterval: 500, workerTimeout: 3_000 })
    const stub = trackerOf(instanceId)
    const before = await runInDurableObject(stub, (object: TaskfoldTracker) => object)
    expect(before.instance?.instanceId).toBe(instanceId)

    let terminal: string[] = []
    await waitUntil(
      async () => (terminal = await terminalIds(instanceId)).length >= 100,
      "100 terminal tasks before the eviction"
    )
    await evictDurableObject(stub)
    const runsBefore = new Map(terminal.map((id) => [id, watch.runs.get(`${instanceId} ${id}`)?.length ?? 0]))
    expect(terminal.length).toBeLessThan(n)

    const done = await finished(instanceId, 30_000)
    const after = await runInDurableObject(stub, (object: TaskfoldTracker) => object)
    // A new object was built over the same storage: the old one's memory is gone.
    expect(after).not.toBe(before)
    expect(done.outcome?.ok).toBe(true)
    // Exactly-once accounting: reduce counted every item once.
    expect(JSON.parse(done.outcome!.result)).toEqual({ sum: n * (n + 1), count: n })
    expect(done.progress?.byName["item"]).toMatchObject({ total: n, succeeded: n, failed: 0, waiting: 0 })
    // No task that was terminal before the eviction ran again.
    for (const [id, runs] of runsBefore)
      expect({ id, runs: watch.runs.get(`${instanceId} ${id}`)?.length }).toEqual({ id, runs })
    expect(watch.runs.get(`${instanceId} FINAL`)).toEqual([0])
    let rerun = 0
    for (let i = 1; i <= n; i++) if ((watch.runs.get(`${instanceId} 0.${i}`)?.length ?? 0) > 1) rerun++
    console.log(
      `evicted with ${terminal.length} of ${n + 1} tasks terminal; ${rerun} live tasks ran again after the eviction`
    )
  })
})
