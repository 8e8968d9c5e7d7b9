import { describe, expect, it } from "vitest"
import { defineJob, runJob } from "../src/index.ts"

describe("runJob in process", () => {
  it("runs a mapReduce job to the right sum", async () => {
    const job = defineJob({
      name: "sum",
      kind: "mapReduce",
      process: async (task, ctx) => {
        if (task.isRoot) {
          await ctx.map(
            Array.from({ length: 1000 }, (_, i) => i),
            "add"
          )
          return "mapped"
        }
        return task.body as number
      },
      reduce: async (results) => {
        let sum = 0
        let count = 0
        for await (const r of results) {
          count++
          if (r.name === "add") sum += r.result as number
        }
        return { sum, count }
      }
    })
    const result = await runJob(job, { workers: 3 })
    expect(result.ok).toBe(true)
    expect(result.result).toEqual({ sum: 499500, count: 1001 })
    expect(result.progress.byName["add"]).toMatchObject({ total: 1000, succeeded: 1000 })
  })
})
