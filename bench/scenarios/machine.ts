/**
 * Scenario 1, one run in a fresh process: `node bench/scenarios/machine.ts --mode machine|plain --n N`.
 * The bodies are built before the clock starts; the clock covers creating the instance, every step and
 * every acknowledgement, up to the outcome.
 */
import { argNumber, argValue, emit, peakRssBytes } from "../lib/common.ts"
import { runMachine } from "../lib/machine-loop.ts"
import { runPlain } from "../lib/plain-loop.ts"

const argv = process.argv.slice(2)
const mode = argValue(argv, "mode", "machine")
const n = argNumber(argv, "n", 100_000)
if (mode !== "machine" && mode !== "plain") throw new Error(`--mode must be machine or plain, not ${mode}`)

const bodies: string[] = new Array(n)
for (let i = 0; i < n; i++) bodies[i] = String(i)

const started = performance.now()
const result = mode === "machine" ? runMachine(bodies) : runPlain(bodies)
const seconds = (performance.now() - started) / 1000
if (!result.ok || result.succeeded !== n) {
  console.error(`${mode}: wrong outcome ${JSON.stringify(result)}; expected ${n} succeeded`)
  process.exit(1)
}
emit({
  mode,
  n,
  seconds,
  perSecond: n / seconds,
  peakRss: peakRssBytes(),
  steps: result.steps,
  batches: result.batches
})
