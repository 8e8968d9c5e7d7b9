import { defineJob } from "@taskfold/core"
import { openSync, writeSync } from "node:fs"
import { join } from "node:path"

export interface SumParams {
  /** Sub-tasks the root maps: one per integer in [0, n). */
  readonly n: number
  /** Milliseconds each sub-task waits, to keep a run going long enough to disturb it. */
  readonly delayMs?: number
  /** A folder where every process appends one line per sub-task execution it starts: "<id> <attempt> <ms>". */
  readonly logDir?: string
}

export interface SumResult {
  readonly count: number
  readonly distinct: number
  readonly sum: number
  readonly failed: number
}

let log: { dir: string; fd: number } | undefined
/** One line per execution, written at once (a process killed with -9 loses none of it). */
const record = (dir: string, line: string) => {
  if (log?.dir !== dir) log = { dir, fd: openSync(join(dir, `${process.pid}.log`), "a") }
  writeSync(log.fd, line)
}

/**
 * The end-to-end tests' job: the root maps n integers, each sub-task returns its integer, and reduce
 * counts what it sees, so a task seen twice or missed shows in the outcome. Short heartbeats and
 * timeouts let the tests lose a worker or a tracker and see the instance recover within seconds.
 */
export const e2eSum = defineJob({
  name: "e2e-sum",
  kind: "mapReduce",
  config: {
    heartbeatInterval: 250,
    workerTimeout: 1_500,
    ackTimeout: 2_000,
    localWorker: "exclude",
    progressInterval: 500,
    retryBackoff: { kind: "fixed", ms: 50 }
  },
  process: async (task, ctx) => {
    const params = ctx.params as SumParams
    if (task.isRoot)
      return ctx.map(
        Array.from({ length: params.n }, (_, i) => i),
        "add"
      )
    if (params.logDir !== undefined) record(params.logDir, `${task.id} ${task.attempt} ${Date.now()}\n`)
    if (params.delayMs !== undefined && params.delayMs > 0)
      await new Promise((resolve) => setTimeout(resolve, params.delayMs))
    return task.body as number
  },
  reduce: async (results) => {
    const seen = new Set<string>()
    let count = 0
    let sum = 0
    let failed = 0
    for await (const result of results) {
      if (result.name !== "add") continue
      count++
      seen.add(result.taskId)
      if (result.ok) sum += result.result as number
      else failed++
    }
    const value: SumResult = { count, distinct: seen.size, sum, failed }
    return value
  }
})
