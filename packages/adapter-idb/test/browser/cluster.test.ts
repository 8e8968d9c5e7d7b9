import { describe, expect, it } from "vitest"
import { defaultPoolSize } from "../../src/index.ts"
import {
  expectExactlyOnce,
  expectWordCount,
  reloadMidRun,
  runByteSums,
  runWordCount,
  workerDiesMidRun
} from "../shared/scenarios.ts"

const createWorker = () => new Worker(new URL("./fixtures/worker.ts", import.meta.url), { type: "module" })
const session = Date.now()

describe("page cluster on Web Workers with an IndexedDB store (Chromium)", () => {
  it("sizes the pool from navigator.hardwareConcurrency", () => {
    expect(defaultPoolSize()).toBe(Math.min(16, Math.max(2, navigator.hardwareConcurrency)))
  })

  it("runs a word count across Web Workers to the right result and releases the instance", async () => {
    const params = { lines: 6_000, linesPerChunk: 30 }
    const run = await runWordCount({ createWorker, workers: 3, database: `browser-run-${session}`, params })
    expectWordCount(run, params)
    // The chunks ran in the Web Workers, not in the page (localWorker: "exclude").
    expect(run.progress.byWorker["page"]?.succeeded).toBe(2)
  })

  it("R-MAP-1 tasks in Web Workers map byte-bodied children: the map calls cross to the page's tracker and the sums come out right", () =>
    runByteSums({ createWorker, workers: 3, database: `browser-byte-sums-${session}` }))

  it("R-REC-1 R-REC-2 simulated reload in one page (tracker, Web Workers and IndexedDB connection torn down, resumed from the same database): every chunk counted once, no terminal task run again", async () => {
    const params = { lines: 6_000, linesPerChunk: 15, delayMs: 20, trace: `browser-reload-trace-${session}` }
    const run = await reloadMidRun({
      createWorker,
      workers: 3,
      database: `browser-reload-${session}`,
      params,
      reloadAfter: 120
    })
    expectExactlyOnce(run, params)
  })

  it("R-WORK-2 a Web Worker terminated mid-run is lost by its silence; its tasks run on the others and the result is still right", async () => {
    const params = { lines: 4_000, linesPerChunk: 10, delayMs: 5 }
    const run = await workerDiesMidRun({
      createWorker,
      workers: 3,
      database: `browser-worker-dies-${session}`,
      params,
      killAfter: 100
    })
    expectWordCount(run, params)
  })
})
