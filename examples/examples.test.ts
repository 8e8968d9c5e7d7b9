import { describe, expect, it } from "vitest"
import { runJob } from "@taskfold/core"
import { countWords, generateText, wordCount } from "./wordcount.ts"
import { countPrimes, primeCount } from "./primes.ts"

describe("examples", () => {
  it("word count equals a direct count of the same text", async () => {
    const params = { lines: 3_000, linesPerChunk: 40, seed: 3 }
    const expected = countWords(generateText(params.lines, params.seed))
    const result = await runJob(wordCount, { workers: 4, params })
    expect(result.ok).toBe(true)
    const value = result.result as { chunks: number; words: number; distinct: number; top: Array<[string, number]> }
    expect(value.chunks).toBe(Math.ceil(params.lines / params.linesPerChunk))
    expect(value.words).toBe([...expected.values()].reduce((a, b) => a + b, 0))
    expect(value.distinct).toBe(expected.size)
    for (const [word, count] of value.top) expect(expected.get(word)).toBe(count)
  })

  it("prime count maps in two levels and finds the 78,498 primes below 1,000,000", async () => {
    expect(countPrimes(0, 100)).toBe(25)
    const result = await runJob(primeCount, { workers: 3, params: { upTo: 1_000_000, ranges: 8, blocksPerRange: 25 } })
    expect(result.ok).toBe(true)
    expect(result.result).toEqual({ primes: 78_498, blocks: 200 })
    expect(result.progress.byName["range"]?.succeeded).toBe(8)
  })
})
