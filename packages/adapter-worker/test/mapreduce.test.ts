import { describe, expect, it } from "vitest"
import { finished, submit } from "./support.ts"

describe("a Durable Object tracker with lanes", () => {
  it("R-FIN-3 R-DISP-1 a 10,000-sub-task mapReduce completes with the right result", async () => {
    const n = 10_000
    const started = Date.now()
    const instanceId = await submit("sum", { n })
    const done = await finished(instanceId, 60_000)
    console.log(`10,000 sub-tasks in ${Date.now() - started} ms`)
    expect(done.outcome?.ok).toBe(true)
    expect(JSON.parse(done.outcome!.result)).toEqual({ sum: n * (n + 1), count: n })
    expect(done.progress?.byName["item"]).toMatchObject({ total: n, succeeded: n, failed: 0 })
    // Sub-tasks ran in lanes, not in the object (localWorker "exclude").
    const lanes = Object.entries(done.progress!.byWorker).filter(([id]) => id.startsWith("lane-"))
    expect(lanes.reduce((total, [, worker]) => total + worker.succeeded, 0)).toBe(n)
  })
})
