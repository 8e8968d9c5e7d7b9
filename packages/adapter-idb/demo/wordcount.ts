import { defineJob } from "@taskfold/core"

/**
 * Word count for the browser: the root (on the page) generates a seeded text, cuts it into chunks of
 * lines and maps one task per chunk with the chunk's UTF-8 bytes as its body, so bodies cross to the
 * Web Workers by transfer; each chunk task counts its words; reduce merges the counts.
 */

const vocabulary = (
  "the a of and to in is it that was he for on are as with his they at be this from have or by one had " +
  "not but what all were when we there can an your which their said if do will each about how up out them " +
  "map reduce task worker tracker batch retry dispatch instance result browser page reload resume"
).split(" ")

/** `lines` lines of words drawn from a small vocabulary by a seeded generator: the same text every time. */
export const generateText = (lines: number, seed = 7): string[] => {
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

export const countWords = (text: string, into: Map<string, number> = new Map()): Map<string, number> => {
  for (const word of text.split(/\s+/)) if (word.length > 0) into.set(word, (into.get(word) ?? 0) + 1)
  return into
}

export interface WordCountParams {
  readonly lines: number
  readonly linesPerChunk: number
  readonly seed?: number
  /** Milliseconds each chunk task waits before counting, to make a run long enough to watch (and reload). */
  readonly delayMs?: number
  /** A BroadcastChannel name: every chunk task announces `{ taskId, attempt }` on it when it starts (for tests). */
  readonly trace?: string
}

export interface WordCountResult {
  readonly chunks: number
  readonly words: number
  readonly distinct: number
  readonly top: ReadonlyArray<readonly [string, number]>
}

/** What the job must return for `params`, computed in one pass without the job. */
export const expectedWordCount = (params: WordCountParams): { chunks: number; words: number; distinct: number } => {
  const text = generateText(params.lines, params.seed)
  const counts = countWords(text.join("\n"))
  let words = 0
  for (const count of counts.values()) words += count
  return { chunks: Math.ceil(params.lines / params.linesPerChunk), words, distinct: counts.size }
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason)
    const timer = setTimeout(resolve, ms)
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer)
        reject(signal.reason)
      },
      { once: true }
    )
  })

let traceChannel: { name: string; channel: BroadcastChannel } | undefined
const announce = (name: string, message: { taskId: string; attempt: number }) => {
  if (traceChannel?.name !== name) traceChannel = { name, channel: new BroadcastChannel(name) }
  traceChannel.channel.postMessage(message)
}

export const wordCount = defineJob({
  name: "word-count",
  kind: "mapReduce",
  config: { localWorker: "exclude" },
  process: async (task, ctx) => {
    const params = ctx.params as WordCountParams
    if (task.isRoot) {
      const text = generateText(params.lines, params.seed)
      const encoder = new TextEncoder()
      const chunks: Uint8Array[] = []
      for (let from = 0; from < text.length; from += params.linesPerChunk) {
        chunks.push(encoder.encode(text.slice(from, from + params.linesPerChunk).join("\n")))
      }
      return { chunks: await ctx.map(chunks, "count") }
    }
    if (params.trace !== undefined) announce(params.trace, { taskId: task.id, attempt: task.attempt })
    if (params.delayMs !== undefined && params.delayMs > 0) await sleep(params.delayMs, ctx.signal)
    return Object.fromEntries(countWords(new TextDecoder().decode(task.body as Uint8Array)))
  },
  reduce: async (results): Promise<WordCountResult> => {
    const totals = new Map<string, number>()
    let chunks = 0
    for await (const result of results) {
      if (result.name !== "count") continue
      if (!result.ok) throw new Error(`chunk ${result.taskId} failed: ${String(result.result)}`)
      chunks++
      for (const [word, count] of Object.entries(result.result as Record<string, number>))
        totals.set(word, (totals.get(word) ?? 0) + count)
    }
    let words = 0
    for (const count of totals.values()) words += count
    const top = [...totals].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 10)
    return { chunks, words, distinct: totals.size, top }
  }
})
