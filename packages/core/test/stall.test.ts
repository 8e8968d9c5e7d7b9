import { describe, expect, it } from "vitest"
import { defineJob, runJob } from "../src/index.ts"

/** Synchronous CPU work: the thread (tracker, workers, timers) does nothing else meanwhile. */
const busy = (ms: number) => {
  const end = Date.now() + ms
  while (Date.now() < end) {
    // spin
  }
}

describe("a busy thread beside the tracker", () => {
  it("R-DISP-10 closure processors that block the thread longer than ackTimeout and workerTimeout run once each; root, sub-tasks and reduce", async () => {
    const runs = new Map<string, number[]>()
    const job = defineJob({
      name: "stall",
      kind: "mapReduce",
      // Every block is longer than the ack timeout and the worker timeout: only the stall credit keeps them apart.
      config: { ackTimeout: 200, heartbeatInterval: 100, workerTimeout: 300 },
      process: async (task, ctx) => {
        runs.set(task.id, [...(runs.get(task.id) ?? []), task.attempt])
        busy(700)
        if (task.isRoot) return ctx.map([1, 2, 3, 4], "n")
        return task.body
      },
      reduce: async (results) => {
        runs.set("reduce", [...(runs.get("reduce") ?? []), 0])
        busy(700)
        let sum = 0
        for await (const r of results) if (r.name === "n") sum += r.result as number
        return sum
      }
    })
    const result = await runJob(job, { workers: 3, slots: 2 })
    expect(result.ok).toBe(true)
    expect(result.result).toBe(10)
    expect(result.outcome.counts).toEqual({ created: 6, succeeded: 6, failed: 0 })
    expect(Object.fromEntries(runs)).toEqual({ "0": [0], "0.1": [0], "0.2": [0], "0.3": [0], "0.4": [0], reduce: [0] })
  }, 30_000)
})
