/**
 * The HTTP scenario's job module, loaded by `taskfold serve` and `taskfold worker` (--jobs). The root
 * maps `params.n` no-op items in calls of at most `params.chunk` (default: all in one call); every
 * sub-task returns null; reduce counts what it reads. `localWorker: "exclude"`, so every sub-task runs
 * on the worker processes and the server's own worker runs only the root and the final task.
 */
import { defineJob } from "@taskfold/core"

export interface NoopParams {
  readonly n: number
  readonly chunk?: number
}

export const benchNoop = defineJob({
  name: "bench-noop",
  kind: "mapReduce",
  config: { localWorker: "exclude" },
  process: async (task, ctx) => {
    if (!task.isRoot) return null
    const { n, chunk = n } = ctx.params as NoopParams
    const size = Math.max(1, chunk)
    for (let from = 0; from < n; from += size) await ctx.map(new Array(Math.min(size, n - from)).fill(0), "noop")
    return null
  },
  reduce: async (results) => {
    let count = 0
    for await (const _ of results) count++
    return count
  }
})
