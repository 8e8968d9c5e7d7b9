import { ROOT_NAME, TaskKind } from "../model/status.ts"
import type { MachineState, RunState } from "./state.ts"
import { createTask } from "./tasks.ts"

/** Starts run `n` with its root task: "0" for plain instances, "<n>" for each trigger of a frequent job. */
export const startRun = (state: MachineState, now: number): RunState => {
  const n = state.nextRun++
  const timeout = state.config.instanceTimeout
  const run: RunState = {
    n,
    rootId: String(n),
    startedAt: now,
    timeoutAt: timeout === null ? null : now + timeout,
    created: 0,
    succeeded: 0,
    failed: 0,
    live: 0,
    pendingMaps: 0,
    finalCreated: false,
    errors: [],
    rootOutcome: undefined,
    finalOutcome: undefined,
    done: false
  }
  state.runs.set(n, run)
  createTask(state, run, {
    id: run.rootId,
    name: ROOT_NAME,
    kind: TaskKind.Root,
    body: state.params,
    pinnedTo: state.localWorkerId
  })
  return run
}

const MAX_CATCH_UP = 10

/**
 * Triggers of a fixedRate / fixedDelay job (R-FREQ-1). A trigger past maxConcurrentSubInstances is recorded
 * as skipped (R-FREQ-2). After a long pause at most MAX_CATCH_UP missed periods are recorded; the rest are jumped.
 */
export const triggerRuns = (state: MachineState, now: number): void => {
  const schedule = state.config.frequent
  if (schedule === null || state.outcome !== null) return
  for (let fired = 0; state.nextTriggerAt !== null && now >= state.nextTriggerAt; fired++) {
    if (fired === MAX_CATCH_UP) {
      state.nextTriggerAt = now + schedule.everyMs
      return
    }
    const at = state.nextTriggerAt
    state.metaDirty = true
    if (state.runs.size >= state.config.maxConcurrentSubInstances) {
      state.history.push({
        run: state.nextRun++,
        triggeredAt: at,
        status: "skipped",
        result: "too many sub-instances running"
      })
      if (state.history.length > 10) state.history.shift()
    } else {
      startRun(state, now)
    }
    // fixedDelay waits for the run to end; completeRun sets the next trigger then.
    state.nextTriggerAt = schedule.mode === "fixedRate" ? at + schedule.everyMs : null
  }
}
