import { defineJob } from "@taskfold/core"
import { appendFileSync } from "node:fs"
import { join } from "node:path"
import { threadId } from "node:worker_threads"

export interface CpuParams {
  /** Sub-tasks the root maps. */
  readonly tasks: number
  /** Milliseconds of synchronous CPU work: in every sub-task (cpu-sub) or in reduce (cpu-reduce). */
  readonly ms: number
  /** A folder where every execution appends "<task id> <attempt> <pid> <thread>" to <pid>.log. */
  readonly logDir: string
}

/** Keeps its thread busy, with no await, for `ms` milliseconds. */
const busy = (ms: number): void => {
  const until = Date.now() + ms
  while (Date.now() < until) {
    // Nothing else runs on this thread meanwhile.
  }
}

const record = (dir: string, line: string) => appendFileSync(join(dir, `${process.pid}.log`), `${line}\n`)

/**
 * R-DISP-10 on real processes: jobs with no config of their own (every knob its default), whose
 * synchronous work outlasts ackTimeout and workerTimeout (15 s each by default).
 */
export const cpuSub = defineJob({
  name: "cpu-sub",
  kind: "mapReduce",
  // The test keeps the sub-tasks off the server's own worker with a submitted override.
  overridable: ["localWorker"],
  process: async (task, ctx) => {
    const params = ctx.params as CpuParams
    if (task.isRoot)
      return ctx.map(
        Array.from({ length: params.tasks }, (_, i) => i),
        "busy"
      )
    record(params.logDir, `${task.id} ${task.attempt} ${process.pid} ${threadId}`)
    busy(params.ms)
    return { n: task.body as number, attempt: task.attempt }
  },
  reduce: async (results) => {
    const seen: Array<{ n: number; attempt: number }> = []
    let failed = 0
    for await (const result of results) {
      if (result.name !== "busy") continue
      if (result.ok) seen.push(result.result as { n: number; attempt: number })
      else failed++
    }
    return { seen: seen.sort((a, b) => a.n - b.n), failed }
  }
})

export const cpuReduce = defineJob({
  name: "cpu-reduce",
  kind: "mapReduce",
  process: async (task, ctx) => {
    const params = ctx.params as CpuParams
    if (task.isRoot)
      return ctx.map(
        Array.from({ length: params.tasks }, (_, i) => i),
        "add"
      )
    return task.body as number
  },
  reduce: async (results, ctx) => {
    const params = ctx.params as CpuParams
    record(params.logDir, `FINAL - ${process.pid} ${threadId}`)
    let sum = 0
    let count = 0
    for await (const result of results) {
      if (result.name !== "add" || !result.ok) continue
      sum += result.result as number
      count++
    }
    busy(params.ms)
    return { sum, count }
  }
})
