import { defineJob } from "@taskfold/core"
import { Schema } from "effect"

/** A reproducible text: `lines` lines of words drawn from a small vocabulary by a seeded generator. */
export const generateText = (lines: number, seed = 7): string[] => {
  const vocabulary = (
    "the a of and to in is it that was he for on are as with his they at be this from have or by one had " +
    "not but what all were when we there can an your which their said if do will each about how up out them " +
    "map reduce task worker tracker batch retry dispatch instance result"
  ).split(" ")
  let state = seed
  const next = () => {
    state = (Math.imul(state, 1103515245) + 12345) & 0x7fffffff
    return state
  }
  const text: string[] = []
  for (let i = 0; i < lines; i++) {
    const words: string[] = []
    const length = 5 + (next() % 11)
    for (let w = 0; w < length; w++) words.push(vocabulary[next() % vocabulary.length] as string)
    text.push(words.join(" "))
  }
  return text
}

export const countWords = (
  lines: ReadonlyArray<string>,
  into: Map<string, number> = new Map()
): Map<string, number> => {
  for (const line of lines) {
    for (const word of line.split(/\s+/)) if (word.length > 0) into.set(word, (into.get(word) ?? 0) + 1)
  }
  return into
}

export const WordCountParams = Schema.Struct({
  lines: Schema.Int,
  linesPerChunk: Schema.Int,
  seed: Schema.optionalKey(Schema.Int)
})
export type WordCountParams = typeof WordCountParams.Type

/**
 * Word count: the root cuts the text into chunks and maps one task per chunk; each counts its words;
 * reduce merges the counts and returns the total and the ten most frequent words.
 */
export const wordCount = defineJob({
  name: "word-count",
  kind: "mapReduce",
  params: WordCountParams,
  tasks: { count: Schema.Array(Schema.String) },
  process: async (task, ctx) => {
    if (task.isRoot) {
      const params = ctx.params
      const text = generateText(params.lines, params.seed)
      const chunks: string[][] = []
      for (let from = 0; from < text.length; from += params.linesPerChunk)
        chunks.push(text.slice(from, from + params.linesPerChunk))
      return { chunks: await ctx.map(chunks, "count") }
    }
    return Object.fromEntries(countWords(task.body))
  },
  reduce: async (results) => {
    const totals = new Map<string, number>()
    let chunks = 0
    for await (const result of results) {
      if (result.name !== "count") continue
      if (!result.ok) throw new Error(`chunk ${result.taskId} failed: ${String(result.result)}`)
      chunks++
      for (const [word, count] of Object.entries(result.result)) totals.set(word, (totals.get(word) ?? 0) + count)
    }
    let words = 0
    for (const count of totals.values()) words += count
    const top = [...totals].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 10)
    return { chunks, words, distinct: totals.size, top }
  }
})
