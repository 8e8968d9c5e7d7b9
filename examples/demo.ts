import { Effect } from "effect"
import { startJob, type Progress } from "@taskfold/core"
import { wordCount } from "./wordcount.ts"

/** Runs the word count on 4 in-process workers with live progress per task name, then prints the result. */
const lines = Number(process.env["DEMO_LINES"] ?? 400_000)
const tty = process.stderr.isTTY === true
const started = performance.now()
const previous: { at: number; done: Record<string, number> } = { at: started, done: {} }
let drawn = 0

const show = (progress: Progress) => {
  const now = performance.now()
  const rows: string[] = []
  for (const [name, p] of Object.entries(progress.byName)) {
    const done = p.succeeded + p.failed
    const rate = ((done - (previous.done[name] ?? 0)) * 1000) / Math.max(1, now - previous.at)
    const width = 24
    const filled = p.total === 0 ? 0 : Math.round((done / p.total) * width)
    rows.push(
      `${name.padEnd(6)} [${"#".repeat(filled).padEnd(width, ".")}] ` +
        `${String(done).padStart(6)} / ${String(p.total).padEnd(6)} ${Math.round(rate).toString().padStart(8)} tasks/s`
    )
    previous.done[name] = done
  }
  previous.at = now
  if (tty && drawn > 0) process.stderr.write(`\x1b[${drawn}A`)
  process.stderr.write(rows.map((row) => `${row}\x1b[K\n`).join(""))
  drawn = rows.length
}

const program = Effect.scoped(
  Effect.gen(function* () {
    const handle = yield* startJob(wordCount, {
      workers: 4,
      params: { lines, linesPerChunk: 50 },
      config: { progressInterval: 250 },
      onProgress: show
    })
    const result = yield* handle.result
    const seconds = (performance.now() - started) / 1000
    const subTasks = result.progress.byName["count"]?.total ?? 0
    console.log(`instance ${result.instanceId}: ${result.ok ? "succeeded" : "failed"}`)
    if (result.ok) {
      const value = result.result as { chunks: number; words: number; distinct: number; top: Array<[string, number]> }
      console.log(`${value.words} words (${value.distinct} distinct) in ${value.chunks} chunks`)
      console.log(`most frequent: ${value.top.map(([word, count]) => `${word} ${count}`).join(", ")}`)
    } else console.log(result.outcome.result)
    console.log(
      `${subTasks} sub-tasks in ${seconds.toFixed(2)} s: ${Math.round(subTasks / seconds)} sub-tasks/s on 4 workers`
    )
    yield* handle.tracker.released
  })
)

await Effect.runPromise(program)
