import { defineJob } from "@taskfold/core"

/**
 * Maps on two levels, the second from inside the workers with byte bodies: the root maps `ranges`
 * JSON tasks, each range maps `blocks` tasks whose bodies are bytes, each block sums its bytes,
 * reduce adds the sums. The range tasks' map calls cross from a Web Worker to the page.
 */
export const byteSums = defineJob({
  name: "byte-sums",
  kind: "mapReduce",
  config: { localWorker: "exclude" },
  process: async (task, ctx) => {
    const { ranges, blocks, size } = ctx.params as { ranges: number; blocks: number; size: number }
    if (task.isRoot)
      return ctx.map(
        Array.from({ length: ranges }, (_, range) => range),
        "range"
      )
    if (task.name === "range") {
      const range = task.body as number
      const items = Array.from({ length: blocks }, (_, block) => {
        const bytes = new Uint8Array(size)
        for (let i = 0; i < size; i++) bytes[i] = (range * 31 + block * 7 + i) % 256
        return bytes
      })
      const created = await ctx.map(items, "block")
      // The worker keeps its own arrays: what crossed was a copy.
      if (items.some((bytes) => bytes.byteLength !== size)) throw new Error("a mapped body was taken from its mapper")
      return created
    }
    const bytes = task.body as Uint8Array
    let sum = 0
    for (const byte of bytes) sum += byte
    return sum
  },
  reduce: async (results) => {
    let total = 0
    let blocks = 0
    for await (const result of results) {
      if (result.name !== "block") continue
      blocks++
      total += result.result as number
    }
    return { blocks, total }
  }
})

export const expectedByteSums = (params: { ranges: number; blocks: number; size: number }) => {
  let total = 0
  for (let range = 0; range < params.ranges; range++)
    for (let block = 0; block < params.blocks; block++)
      for (let i = 0; i < params.size; i++) total += (range * 31 + block * 7 + i) % 256
  return { blocks: params.ranges * params.blocks, total }
}
