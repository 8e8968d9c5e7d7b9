import { RejectedError } from "../model/errors.ts"
import type { ContextAppend } from "../model/messages.ts"
import type { Progress, WorkerProgress } from "../model/instance.ts"
import { utf8Length } from "./collections.ts"
import { runningTask } from "./retry.ts"
import { type MachineState, UNHEALTHY_STRIKES } from "./state.ts"
import { touchWorker } from "./contact.ts"

/** Progress per task name and per worker, from the counters kept with every change (R-PROG-1). */
export const progressSnapshot = (state: MachineState, now: number): Progress => {
  const byName: Progress["byName"] = {}
  for (const [name, counter] of state.byName) {
    const { total, waiting, dispatched, running, succeeded, failed } = counter
    byName[name] = { total, waiting, dispatched, running, succeeded, failed }
  }
  const byWorker: Record<string, WorkerProgress> = {}
  for (const worker of state.workerList) {
    byWorker[worker.id] = {
      assigned: worker.held,
      running: worker.running,
      succeeded: worker.succeeded,
      failed: worker.failed,
      ...(worker.strikes >= UNHEALTHY_STRIKES ? { unhealthy: true as const } : {})
    }
  }
  return { instanceId: state.instanceId, at: now, byName, byWorker, outcome: state.outcome }
}

/** Pushes progress every progressInterval (R-PROG-2); the finishing step pushes it too, and is the last to. */
export const pushProgress = (state: MachineState, now: number): void => {
  if (
    state.out.progress !== null ||
    state.outcome !== null ||
    now - state.lastProgressAt < state.config.progressInterval
  )
    return
  state.lastProgressAt = now
  state.out.progress = progressSnapshot(state, now)
}

/**
 * A task appends key/values to the instance context; past maxContextBytes the append is dropped with a warning
 * (R-CTX-1).
 */
export const appendContext = (state: MachineState, request: ContextAppend, now: number): boolean | RejectedError => {
  touchWorker(state, request.workerId, now)
  const task = runningTask(state, request.taskId, request.attempt, request.workerId)
  if (task instanceof RejectedError) return task
  const merged = { ...state.context, ...request.entries }
  const bytes = utf8Length(JSON.stringify(merged))
  if (bytes > state.config.maxContextBytes) {
    state.out.warnings.push(
      `context append from task ${request.taskId} dropped: the context would be ${bytes} bytes, ` +
        `maxContextBytes is ${state.config.maxContextBytes}`
    )
    return false
  }
  state.context = merged
  state.contextBytes = bytes
  state.metaDirty = true
  return true
}
