import { RejectedError } from "../model/errors.ts"
import type { FailedTask, TaskCounts } from "../model/instance.ts"
import { BROADCAST_NAME, FINAL_NAME, TaskKind } from "../model/status.ts"
import { describeError, taskfoldError, type TaskError } from "../model/task-error.ts"
import { progressSnapshot } from "./progress.ts"
import type { LiveTask, MachineState, RunState } from "./state.ts"
import { drainBlocks, findTask } from "./blocks.ts"
import { createTask, finish } from "./tasks.ts"

const HISTORY = 10

const counts = (run: RunState) => `total: ${run.created}, succeeded: ${run.succeeded}, failed: ${run.failed}`

/**
 * "total: 11, succeeded: 9, failed: 2; 2 of 11 tasks failed, reduce skipped; first errors: 0.3 (add, attempt 1): Error:
 * boom; …" (R-BC-2, R-FIN-3, R-FIN-8).
 */
const failureSummary = (run: RunState, what: string): string => {
  const first = run.errors.map(
    (failed) => `${failed.taskId} (${failed.name}, attempt ${failed.attempt}): ${describeError(failed.error)}`
  )
  return `${counts(run)}; ${run.failed} of ${run.created} tasks failed, ${what}; first errors: ${first.join("; ")}`
}

/** Root of a broadcast job succeeded: one task per live worker, pinned to it, carrying preProcess's result (R-BC-1). */
export const createBroadcastTasks = (state: MachineState, root: LiveTask): void => {
  for (const worker of state.workerList) {
    if (worker.lost) continue
    const number = ++root.childCount
    createTask(state, root.run, {
      id: `${root.id}.${number}`,
      name: BROADCAST_NAME,
      kind: TaskKind.Broadcast,
      body: root.result ?? "null",
      pinnedTo: worker.id
    })
  }
}

/** Counts and first errors of the given runs, for an outcome (R-FIN-8). */
const tally = (state: MachineState, runs: Iterable<RunState>): { counts: TaskCounts; errors: FailedTask[] } => {
  const counts = { created: 0, succeeded: 0, failed: 0 }
  const errors: FailedTask[] = []
  for (const run of runs) {
    counts.created += run.created
    counts.succeeded += run.succeeded
    counts.failed += run.failed
    for (const failed of run.errors) if (errors.length < state.config.maxReportedErrors) errors.push(failed)
  }
  return { counts, errors }
}

const decideOutcome = (
  state: MachineState,
  ok: boolean,
  result: string,
  now: number,
  runs: Iterable<RunState> = state.runs.values()
): void => {
  if (state.outcome !== null) return
  state.outcome = { ok, result, finishedAt: now, ...tally(state, runs) }
  state.metaDirty = true
  state.out.outcome = state.outcome
  state.out.progress = progressSnapshot(state, now)
}

/** A run is over: the instance's outcome, or a history entry of a frequent job (R-FREQ-3). */
const completeRun = (state: MachineState, run: RunState, ok: boolean, result: string, now: number): void => {
  if (run.done) return
  run.done = true
  state.metaDirty = true
  if (state.config.frequent === null) return decideOutcome(state, ok, result, now, [run])
  state.runs.delete(run.n)
  state.deleteRuns.push(run.n)
  const entry = state.history.findIndex((record) => record.run === run.n)
  const record = { run: run.n, triggeredAt: run.startedAt, status: ok ? "succeeded" : "failed", result } as const
  if (entry >= 0) state.history[entry] = record
  else state.history.push(record)
  if (state.history.length > HISTORY) state.history.splice(0, state.history.length - HISTORY)
  if (state.config.frequent.mode === "fixedDelay") state.nextTriggerAt = now + state.config.frequent.everyMs
}

/**
 * Checks whether a run is over; O(1) per run, from counters kept with every status change (R-FIN-1).
 * Decides standalone and map runs, creates the final task of mapReduce and broadcast runs (R-FIN-2, R-FIN-3),
 * and fails a run whose counts do not add up (R-FIN-4).
 */
const checkRun = (state: MachineState, run: RunState, now: number): void => {
  if (run.done || run.live > 0 || run.pendingMaps > 0) return
  if (run.created === 0) return completeRun(state, run, false, "root task was not created", now)
  if (run.succeeded + run.failed !== run.created) {
    return completeRun(
      state,
      run,
      false,
      `counts do not add up: created ${run.created}, succeeded ${run.succeeded}, failed ${run.failed}`,
      now
    )
  }
  // A root that failed never makes an ok outcome: the work it was to map out was never done (R-FIN-8).
  const rootFailed = run.rootOutcome !== undefined && !run.rootOutcome.ok
  if (run.finalCreated) {
    const final = run.finalOutcome ?? { ok: false, text: "final task result missing" }
    if (final.ok && rootFailed) return completeRun(state, run, false, failureSummary(run, "the root task failed"), now)
    return completeRun(state, run, final.ok, final.text, now)
  }
  switch (state.kind) {
    case "standalone": {
      const root = run.rootOutcome ?? { ok: false, text: "root task result missing" }
      return completeRun(state, run, root.ok, root.text, now)
    }
    case "map":
      return completeRun(
        state,
        run,
        run.failed === 0,
        run.failed === 0 ? counts(run) : failureSummary(run, "so the map failed"),
        now
      )
    case "mapReduce":
    case "broadcast":
      if (!state.config.runReduceIfFail && run.failed > 0) {
        return completeRun(
          state,
          run,
          false,
          failureSummary(run, `${state.kind === "broadcast" ? "postProcess" : "reduce"} skipped`),
          now
        )
      }
      run.finalCreated = true
      createTask(state, run, {
        id: `${run.rootId}.F`,
        name: FINAL_NAME,
        kind: TaskKind.Final,
        body: "null",
        pinnedTo: state.localWorkerId
      })
  }
}

export const checkRuns = (state: MachineState, now: number): void => {
  for (const run of state.runs.values()) checkRun(state, run, now)
}

/** Fails every task of a run still going, tells their workers to stop, and ends the run with `outcome`. */
export const abortRun = (
  state: MachineState,
  run: RunState,
  taskError: TaskError,
  outcome: string,
  now: number
): void => {
  if (run.done) return
  const stopped = new Map<string, string[]>()
  for (const task of [...state.tasks.values()]) {
    if (task.run !== run) continue
    const worker = task.worker
    if (worker !== undefined && !worker.lost) {
      const ids = stopped.get(worker.id)
      if (ids === undefined) stopped.set(worker.id, [task.id])
      else ids.push(task.id)
    }
    finish(state, task, false, null, taskError)
  }
  // Children still in their blocks have no worker to stop.
  drainBlocks(state, run, (task) => finish(state, task, false, null, taskError))
  for (const [workerId, taskIds] of stopped) {
    state.out.stops.push({ workerId, message: { instanceId: state.instanceId, taskIds, reason: outcome } })
  }
  completeRun(state, run, false, outcome, now)
}

const stopAllWorkers = (state: MachineState, reason: string): void => {
  for (const worker of state.workerList) {
    if (!worker.lost)
      state.out.stops.push({ workerId: worker.id, message: { instanceId: state.instanceId, taskIds: null, reason } })
  }
}

/** Kill the instance (no reduce) or one task (R-FIN-7). */
export const kill = (
  state: MachineState,
  taskId: string | null,
  reason: string,
  now: number
): RejectedError | undefined => {
  if (taskId === null) {
    if (state.outcome !== null) {
      return new RejectedError({ reason: "instance-finished", message: `instance ${state.instanceId} has finished` })
    }
    const runs = [...state.runs.values()]
    for (const run of runs) abortRun(state, run, taskfoldError("killed", `killed: ${reason}`), reason, now)
    decideOutcome(state, false, reason, now, runs)
    stopAllWorkers(state, reason)
    return undefined
  }
  const task = findTask(state, taskId)
  if (task === undefined) {
    return new RejectedError({
      reason: "unknown-task",
      message: `task ${taskId} is not running in ${state.instanceId}`
    })
  }
  const worker = task.worker
  finish(state, task, false, null, taskfoldError("killed", `killed: ${reason}`))
  if (worker !== undefined && !worker.lost) {
    state.out.stops.push({ workerId: worker.id, message: { instanceId: state.instanceId, taskIds: [taskId], reason } })
  }
  return undefined
}

/** Runs past their timeout fail; workers are told to stop (R-FIN-5, R-FREQ-3). */
export const checkTimeouts = (state: MachineState, now: number): void => {
  for (const run of [...state.runs.values()]) {
    // A finished run cannot time out: no stop messages after the outcome, no wake-up in the past.
    if (run.done || run.timeoutAt === null || now < run.timeoutAt) continue
    abortRun(state, run, taskfoldError("timed-out", "the instance timed out"), "timed out", now)
    if (state.config.frequent === null) stopAllWorkers(state, "timed out")
  }
}

export const nextTimeout = (state: MachineState): number | null => {
  let at: number | null = null
  for (const run of state.runs.values())
    if (!run.done && run.timeoutAt !== null && (at === null || run.timeoutAt < at)) at = run.timeoutAt
  return at
}

/**
 * On resume the stored rows did not match the stored counters (a store lost or duplicated rows): the instance
 * fails with the counts instead of reducing partial data (R-FIN-4).
 */
export const checkRestored = (state: MachineState, now: number): void => {
  const problem = state.restoreProblem
  if (problem === null) return
  state.restoreProblem = null
  const runs = [...state.runs.values()]
  for (const run of runs) abortRun(state, run, taskfoldError("store-mismatch", problem), problem, now)
  decideOutcome(state, false, problem, now, runs)
  stopAllWorkers(state, problem)
}

/** The storage failed past its retries: the instance fails with the cause (R-RETRY-4). */
export const storageFailed = (state: MachineState, cause: string, now: number): void => {
  if (state.outcome !== null) return
  decideOutcome(state, false, `storage failure: ${cause}`, now)
  // Decided: no run creates a final task or decides anything after this.
  for (const run of state.runs.values()) run.done = true
  stopAllWorkers(state, "storage failure")
}

/** The owner has the outcome: workers stop, the instance's tasks are deleted, the tracker is released (R-FIN-6). */
export const outcomeAcknowledged = (state: MachineState): void => {
  if (state.outcome === null || state.outcomeAcked) return
  state.outcomeAcked = true
  state.released = true
  state.metaDirty = true
  stopAllWorkers(state, "instance finished")
}
