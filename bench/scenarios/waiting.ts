/**
 * Scenario 2b, one run in a fresh process: `node bench/scenarios/waiting.ts --n N`.
 * Live memory per waiting task: the in-process job of scenario 2 (a mapReduce whose root maps N no-op items
 * in one call, memory store, 4 workers), in pull mode, so no sub-task leaves: the in-process workers never
 * pull. Once the map call is answered and the root has succeeded, the live heap plus external memory after a
 * full collection, less the same before the job started, divided by N. Unlike scenario 2's bytes per task, this
 * leaves out garbage not collected yet and memory the heap keeps after a collection.
 */
import { Deferred, Effect } from "effect"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { defineJob, startJob } from "@taskfold/core"
import { argNumber, emit, peakRssBytes } from "../lib/common.ts"

const n = argNumber(process.argv.slice(2), "n", 100_000)

setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void
const liveBytes = (): number => {
  gc()
  gc()
  const usage = process.memoryUsage()
  return usage.heapUsed + usage.external
}

const run = Effect.gen(function* () {
  const mapped = yield* Deferred.make<number>()
  const job = defineJob({
    name: "waiting",
    kind: "mapReduce",
    process: async (task, ctx) => {
      if (task.isRoot) Deferred.doneUnsafe(mapped, Effect.succeed(await ctx.map(new Array(n).fill(0), "noop")))
      return null
    },
    reduce: async () => 0
  })
  const before = liveBytes()
  const handle = yield* startJob(job, { workers: 4, config: { dispatchMode: "pull" } })
  const created = yield* Deferred.await(mapped)
  // Measured once the root's success is in: the step that wrote the children is over by then.
  while ((yield* handle.progress).byName["ROOT"]?.succeeded !== 1) yield* Effect.sleep(1)
  const after = liveBytes()
  const progress = yield* handle.progress
  yield* handle.kill("measured")
  yield* handle.tracker.released
  return { created, waiting: progress.byName["noop"]?.waiting ?? 0, bytes: after - before }
})

const result = await Effect.runPromise(Effect.scoped(run))
if (result.created !== n || result.waiting !== n) {
  console.error(`waiting: expected ${n} waiting tasks, the map created ${result.created} and ${result.waiting} wait`)
  process.exit(1)
}
emit({
  n,
  seconds: 0,
  perSecond: 0,
  peakRss: peakRssBytes(),
  liveBytes: result.bytes,
  bytesPerWaitingTask: result.bytes / n
})
