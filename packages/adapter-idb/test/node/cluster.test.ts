import "fake-indexeddb/auto"
import { describe, expect, it } from "vitest"
import { wordCount } from "../../demo/wordcount.ts"
import { byteSums } from "../shared/jobs.ts"
import {
  expectExactlyOnce,
  expectWordCount,
  reloadMidRun,
  runByteSums,
  runWordCount,
  workerDiesMidRun
} from "../shared/scenarios.ts"
import { messageChannelWorker } from "./message-channel-worker.ts"

const createWorker = messageChannelWorker([wordCount, byteSums])

describe("page cluster over MessageChannels, IndexedDB store (fake-indexeddb, Node)", () => {
  it("runs a word count across the workers to the right result and releases the instance", async () => {
    const params = { lines: 3_000, linesPerChunk: 25 }
    const run = await runWordCount({ createWorker, workers: 3, database: "node-run", params })
    expectWordCount(run, params)
  })

  it("R-MAP-1 tasks in the workers map byte-bodied children: the map calls cross to the page's tracker and the sums come out right", () =>
    runByteSums({ createWorker, workers: 3, database: "node-byte-sums" }))

  it("R-REC-1 R-REC-2 tracker, workers and connection torn down mid-run resume from the same database: every chunk counted once, no terminal task run again", async () => {
    const params = { lines: 4_000, linesPerChunk: 10, delayMs: 3, trace: "node-reload-trace" }
    const run = await reloadMidRun({ createWorker, workers: 3, database: "node-reload", params, reloadAfter: 120 })
    expectExactlyOnce(run, params)
  })

  it("R-WORK-2 a worker that dies mid-run is lost by its silence; its tasks run elsewhere and the result is still right", async () => {
    const params = { lines: 4_000, linesPerChunk: 10, delayMs: 3 }
    const run = await workerDiesMidRun({
      createWorker,
      workers: 3,
      database: "node-worker-dies",
      params,
      killAfter: 100
    })
    expectWordCount(run, params)
    const others = Object.entries(run.progress.byWorker).filter(([id]) => id !== run.killed && id !== "page")
    expect(others.reduce((sum, [, worker]) => sum + worker.succeeded, 0)).toBeGreaterThan(0)
  })
})
