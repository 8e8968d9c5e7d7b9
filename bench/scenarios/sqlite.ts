/**
 * Scenario 3, one run in a fresh process: `node bench/scenarios/sqlite.ts --n N [--chunk C] [--deadline S]`.
 * runJob of a mapReduce whose root maps N no-op items, on 4 in-process workers (16 slots each) with the
 * SQLite store on a new file (WAL) in a temporary folder, removed afterwards; reduce counts the results.
 * `--chunk C` maps in calls of at most C items (default: one call of N), so back-pressure can bound
 * memory on large N. The clock covers runJob from the call to its result, as in scenario 2.
 * `--deadline S` (default: none) gives up after S seconds: the run then reports `completed: false`,
 * the sub-tasks done so far and the peak RSS up to then, and exits 0 (the runner reports it as such).
 */
import { defineJob, runJob } from "@taskfold/core"
import { openSqliteStore } from "@taskfold/node"
import { mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { argNumber, emit, peakRssBytes } from "../lib/common.ts"

const argv = process.argv.slice(2)
const n = argNumber(argv, "n", 100_000)
const chunk = Math.max(1, argNumber(argv, "chunk", n))
const deadline = argNumber(argv, "deadline", 0)

let done = 0
const job = defineJob({
  name: "noop",
  kind: "mapReduce",
  process: async (task, ctx) => {
    if (task.isRoot) {
      for (let from = 0; from < n; from += chunk) await ctx.map(new Array(Math.min(chunk, n - from)).fill(0), "noop")
      return null
    }
    done++
    return null
  },
  reduce: async (results) => {
    let count = 0
    for await (const _ of results) count++
    return count
  }
})

const folder = mkdtempSync(join(tmpdir(), "taskfold-bench-sqlite-"))
const file = join(folder, "tasks.db")
const store = openSqliteStore(file)
const fileBytes = (): number => {
  let bytes = 0
  for (const name of [file, `${file}-wal`]) {
    try {
      bytes += statSync(name).size
    } catch {}
  }
  return bytes
}
const cleanUp = (): void => {
  store.close()
  rmSync(folder, { recursive: true, force: true })
}

const started = performance.now()
if (deadline > 0) {
  setTimeout(() => {
    const seconds = (performance.now() - started) / 1000
    const peakRss = peakRssBytes()
    const dbBytes = fileBytes()
    console.error(`sqlite: gave up after ${seconds.toFixed(0)} s with ${done} of ${n} sub-tasks done`)
    emit({ n, chunk, completed: false, done, seconds, perSecond: done / seconds, peakRss, dbBytes })
    try {
      cleanUp()
    } catch {}
    process.exit(0)
  }, deadline * 1000).unref()
}
try {
  const result = await runJob(job, { workers: 4, store })
  const seconds = (performance.now() - started) / 1000
  // Every sub-task plus the root reach reduce.
  if (!result.ok || result.result !== n + 1) {
    console.error(`sqlite: wrong outcome ${JSON.stringify(result.outcome)}; expected ${n + 1} results`)
    process.exitCode = 1
  } else {
    const dbBytes = fileBytes()
    emit({
      n,
      chunk,
      completed: true,
      done,
      seconds,
      perSecond: n / seconds,
      peakRss: peakRssBytes(),
      rssAtEnd: process.memoryUsage().rss,
      dbBytes
    })
  }
} finally {
  cleanUp()
}
