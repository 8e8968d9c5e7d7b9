/**
 * An example taskfold deployment on Cloudflare: a word count over a text the caller sends, split into
 * lines that run as sub-tasks in lanes (Worker invocations) and reduced in the instance's Durable Object.
 *
 *   npx -y pnpm@12.21.0 --filter @taskfold/worker run dev      # wrangler dev on http://127.0.0.1:8787
 */
import { defineJob } from "@taskfold/core"
import { taskfold } from "@taskfold/worker"

const wordcount = defineJob({
  name: "wordcount",
  kind: "mapReduce",
  process: async (task, ctx) => {
    if (task.isRoot) {
      const { text } = ctx.params as { text: string }
      return ctx.map(
        text.split("\n").filter((line) => line.trim() !== ""),
        "line"
      )
    }
    const counts: Record<string, number> = {}
    for (const word of (task.body as string).toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [])
      counts[word] = (counts[word] ?? 0) + 1
    return counts
  },
  reduce: async (results) => {
    const total: Record<string, number> = {}
    for await (const result of results) {
      if (result.name !== "line" || !result.ok) continue
      for (const [word, n] of Object.entries(result.result as Record<string, number>))
        total[word] = (total[word] ?? 0) + n
    }
    return Object.fromEntries(
      Object.entries(total)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 20)
    )
  }
})

/** Sums 1..n doubled, with n sub-tasks: a quick way to watch thousands of sub-tasks go by. */
const sum = defineJob({
  name: "sum",
  kind: "mapReduce",
  process: async (task, ctx) => {
    if (task.isRoot)
      return ctx.map(
        Array.from({ length: (ctx.params as { n: number }).n }, (_, i) => i + 1),
        "item"
      )
    return (task.body as number) * 2
  },
  reduce: async (results) => {
    let sum = 0
    for await (const result of results) if (result.name === "item" && result.ok) sum += result.result as number
    return sum
  }
})

const deployment = taskfold({ jobs: [wordcount, sum], lanes: 4, laneSlots: 16 })

export class TaskfoldTracker extends deployment.Tracker {}

export default { fetch: deployment.fetch }
