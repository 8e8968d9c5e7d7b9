/**
 * Scenario: CPU-bound work on worker threads (R-DISP-10), one process:
 * `node bench/scenarios/threads.ts [--upTo N] [--ranges R] [--blocks B] [--runs K]`.
 * examples/primes.ts counts the primes below N by runJobModule (runJob with its processors on a thread pool),
 * first on 1 thread, then on 2, with the same params; K rounds, interleaved, so a change in the machine's
 * load hits both alike. Each figure is the median of its K runs, from the call to its result: the pool's
 * start (its threads load the job module) is inside it. Prints both times and the ratio; never asserts.
 */
import { loadavg } from "node:os"
import { fileURLToPath } from "node:url"
import { runJobModule } from "@taskfold/node"
import { argNumber, emit, median } from "../lib/common.ts"

const argv = process.argv.slice(2)
const params = {
  upTo: argNumber(argv, "upTo", 1e9),
  ranges: argNumber(argv, "ranges", 16),
  blocksPerRange: argNumber(argv, "blocks", 64)
}
const rounds = argNumber(argv, "runs", 3)
const primes = fileURLToPath(new URL("../../examples/primes.ts", import.meta.url))

const timed = async (threads: number): Promise<number> => {
  const started = performance.now()
  const result = await runJobModule(primes, { threads, params })
  const seconds = (performance.now() - started) / 1000
  if (!result.ok) {
    console.error(`threads: wrong outcome on ${threads} thread(s): ${JSON.stringify(result.outcome)}`)
    process.exit(1)
  }
  console.log(
    `  ${threads} thread${threads === 1 ? " " : "s"}: ${seconds.toFixed(2)} s (${JSON.stringify(result.result)})`
  )
  return seconds
}

console.log(
  `primes below ${params.upTo.toLocaleString("en-US")} in ${params.ranges * params.blocksPerRange} blocks, ` +
    `${rounds} round(s); load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`
)
const one: number[] = []
const two: number[] = []
for (let round = 0; round < rounds; round++) {
  one.push(await timed(1))
  two.push(await timed(2))
}
const ratio = median(one) / median(two)
console.log(
  `1 thread ${median(one).toFixed(2)} s, 2 threads ${median(two).toFixed(2)} s: ` +
    `2 threads are ${ratio.toFixed(2)}× as fast; load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`
)
emit({ params, oneThread: one, twoThreads: two, ratio })
