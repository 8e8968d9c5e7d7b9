import { defineJob } from "@taskfold/core"

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

export interface PrimeParams {
  readonly upTo: number
  /** Ranges the root maps out; each maps its range again into blocks. */
  readonly ranges: number
  readonly blocksPerRange: number
}

interface Span {
  readonly from: number
  readonly to: number
}

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
  process: async (task, ctx) => {
    const params = ctx.params as PrimeParams
    if (task.isRoot) return { ranges: await ctx.map(split({ from: 0, to: params.upTo }, params.ranges), "range") }
    const span = task.body as Span
    if (task.name === "range") return { blocks: await ctx.map(split(span, params.blocksPerRange), "block") }
    return countPrimes(span.from, span.to)
  },
  reduce: async (results) => {
    let primes = 0
    let blocks = 0
    for await (const result of results) {
      if (result.name !== "block") continue
      if (!result.ok) throw new Error(`block ${result.taskId} failed: ${String(result.result)}`)
      primes += result.result as number
      blocks++
    }
    return { primes, blocks }
  }
})
