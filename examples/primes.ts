import { defineJob } from "@taskfold/core"
import { Schema } from "effect"

/** Primes in [from, to) by a segmented sieve. */
export const countPrimes = (from: number, to: number): number => {
  const low = Math.max(2, from)
  if (to <= low) return 0
  const limit = Math.floor(Math.sqrt(to - 1))
  const small = new Uint8Array(limit + 1)
  const segment = new Uint8Array(to - low)
  for (let p = 2; p <= limit; p++) {
    if (small[p]) continue
    for (let m = p * p; m <= limit; m += p) small[m] = 1
    for (let m = Math.max(p * p, Math.ceil(low / p) * p); m < to; m += p) segment[m - low] = 1
  }
  let count = 0
  for (let i = 0; i < segment.length; i++) if (segment[i] === 0) count++
  return count
}

export const PrimeParams = Schema.Struct({
  upTo: Schema.Int,
  /** Ranges the root maps out; each maps its range again into blocks. */
  ranges: Schema.Int,
  blocksPerRange: Schema.Int
})
export type PrimeParams = typeof PrimeParams.Type

const Span = Schema.Struct({ from: Schema.Int, to: Schema.Int })
type Span = typeof Span.Type

const split = (span: Span, parts: number): Span[] => {
  const size = Math.ceil((span.to - span.from) / parts)
  const spans: Span[] = []
  for (let from = span.from; from < span.to; from += size) spans.push({ from, to: Math.min(span.to, from + size) })
  return spans
}

/** Primes below upTo, mapped in two levels: root → ranges → blocks; reduce sums the blocks' counts. */
export const primeCount = defineJob({
  name: "prime-count",
  kind: "mapReduce",
  params: PrimeParams,
  tasks: { range: Span, block: Span },
  process: async (task, ctx) => {
    const params = ctx.params
    if (task.isRoot) return { ranges: await ctx.map(split({ from: 0, to: params.upTo }, params.ranges), "range") }
    const span = task.body
    if (task.name === "range") return { blocks: await ctx.map(split(span, params.blocksPerRange), "block") }
    return countPrimes(span.from, span.to)
  },
  reduce: async (results) => {
    let primes = 0
    let blocks = 0
    for await (const result of results) {
      if (result.name !== "block") continue
      if (!result.ok) throw new Error(`block ${result.taskId} failed: ${String(result.result)}`)
      // A block's result is its count; the mappers' are the counts of what they mapped.
      if (typeof result.result === "number") primes += result.result
      blocks++
    }
    return { primes, blocks }
  }
})
