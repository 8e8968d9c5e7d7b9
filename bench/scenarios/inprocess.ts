/**
 * Scenario 2, one run in a fresh process: `node bench/scenarios/inprocess.ts --n N`.
 * runJob of a mapReduce whose root maps N no-op items in one call, on 4 in-process workers (16 slots
 * each) with the memory store and the job's default config; reduce counts the results. The clock
 * covers runJob from the call to its result (the outcome acknowledged and the instance released).
 * `--n 0` is the empty run: its peak RSS is the baseline that bytes per task are counted above.
 */
import { defineJob, runJob } from "@taskfold/core"
import { argNumber, emit, peakRssBytes } from "../lib/common.ts"

const n = argNumber(process.argv.slice(2), "n", 100_000)

const job = defineJob({
  name: "noop",
  kind: "mapReduce",
  process: async (task, ctx) => {
    if (task.isRoot) {
      await ctx.map(new Array(n).fill(0), "noop")
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
// Every sub-task plus the root reach reduce.
if (!result.ok || result.result !== n + 1) {
  console.error(`inprocess: wrong outcome ${JSON.stringify(result.outcome)}; expected ${n + 1} results`)
  process.exit(1)
}
emit({ n, seconds, perSecond: n === 0 ? 0 : n / seconds, peakRss: peakRssBytes(), rssAtEnd: process.memoryUsage().rss })
