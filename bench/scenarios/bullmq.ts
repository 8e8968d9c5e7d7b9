/**
 * Scenario 3 (the baseline), one run in a fresh process: `node bench/scenarios/bullmq.ts --port P --n N`
 * [--workers 4 --concurrency 16].
 * A BullMQ FlowProducer adds one parent with N children; 4 Workers on the children's queue (16
 * concurrency each, like taskfold's 4 workers × 16 slots) run a processor that returns 1 at once; one
 * Worker on the parent's queue sums getChildrenValues(). The clock covers flow.add up to the parent's
 * completion; the workers are connected and ready before it starts. BullMQ's defaults otherwise
 * (completed jobs are kept in Redis, as taskfold keeps every result for reduce).
 */
import { FlowProducer, Worker, type Job } from "bullmq"
import { argNumber, emit, peakRssBytes } from "../lib/common.ts"

const argv = process.argv.slice(2)
const port = argNumber(argv, "port", 6379)
const n = argNumber(argv, "n", 20_000)
const WORKERS = argNumber(argv, "workers", 4)
const CONCURRENCY = argNumber(argv, "concurrency", 16)

const connection = { host: "127.0.0.1", port, maxRetriesPerRequest: null }
const prefix = `bench-${process.pid}`

let finish: (sum: number) => void = () => {}
let fail: (error: Error) => void = () => {}
const done = new Promise<number>((resolve, reject) => {
  finish = resolve
  fail = reject
})

const workers: Worker[] = []
for (let i = 0; i < WORKERS; i++) {
  workers.push(new Worker("children", async () => 1, { connection, prefix, concurrency: CONCURRENCY }))
}
const parent = new Worker(
  "parents",
  async (job: Job) => {
    const values = (await job.getChildrenValues()) as Record<string, number>
    let sum = 0
    for (const key in values) sum += values[key] ?? 0
    return sum
  },
  { connection, prefix }
)
parent.on("completed", (_job, sum: number) => finish(sum))
parent.on("failed", (_job, error) => fail(error))
for (const worker of [...workers, parent]) worker.on("error", (error) => fail(error))
await Promise.all([...workers, parent].map((worker) => worker.waitUntilReady()))
const flows = new FlowProducer({ connection, prefix })
await flows.waitUntilReady()

const children = new Array(n)
for (let i = 0; i < n; i++) children[i] = { name: "child", queueName: "children", data: { i } }

const started = performance.now()
await flows.add({ name: "parent", queueName: "parents", children })
const addSeconds = (performance.now() - started) / 1000
const sum = await done
const seconds = (performance.now() - started) / 1000
const peakRss = peakRssBytes()
await Promise.all([...workers, parent].map((worker) => worker.close()))
await flows.close()
if (sum !== n) {
  console.error(`bullmq: the parent summed ${sum}, expected ${n}`)
  process.exit(1)
}
emit({ n, seconds, addSeconds, perSecond: n / seconds, peakRss, workers: WORKERS, concurrency: CONCURRENCY })
process.exit(0)
