import { defineJob, runJob } from "@taskfold/core"

const n = Number(process.argv[2] ?? 1_000_000)
const job = defineJob({
  name: "noop",
  kind: "mapReduce",
  config: { maxWaitingTasks: 2_000_000 },
  process: async (task, ctx) => {
    if (task.isRoot) {
      const items = new Array(n).fill(0)
      await ctx.map(items, "noop")
      return null
    }
    return null
  },
  reduce: async (results) => {
    let count = 0
    for await (const _ of results) count++
    return count
  }
})
const started = performance.now()
const result = await runJob(job, { workers: 4 })
const seconds = (performance.now() - started) / 1000
console.log(JSON.stringify({ ok: result.ok, result: result.result, seconds, perSecond: Math.round(n / seconds), rssMB: Math.round(process.memoryUsage().rss / 1e6) }))
