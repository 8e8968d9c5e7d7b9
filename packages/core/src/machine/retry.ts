import { RejectedError } from "../model/errors.ts"
import { TaskKind, TaskStatus } from "../model/status.ts"
import type { TaskError } from "../model/task-error.ts"
import { nextRandom } from "./collections.ts"
import { findTask } from "./blocks.ts"
import { finish, requeue } from "./tasks.ts"
import type { LiveTask, MachineState } from "./state.ts"

/** Delay before retry number `failures` (1-based), drawn from the instance's seed (R-RETRY-1). */
export const backoffDelay = (state: MachineState, failures: number): number => {
  const backoff = state.config.retryBackoff
  if (backoff.kind === "fixed") return backoff.ms
  const full = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(failures - 1, 40))
  const [random, seed] = nextRandom(state.seed)
  state.seed = seed
  return Math.round(full * (1 - backoff.jitter * random))
}

/** A result the worker found too large would be too large again: that failure is not retried (R-RETRY-3). */
const isFinal = (error: TaskError): boolean => error.tag === "TaskfoldError" && error.reason === "result-too-large"

/** A failed attempt: retried while failures < taskRetries, else terminal (R-RETRY-1, R-RETRY-2, R-RETRY-3). */
export const failAttempt = (state: MachineState, task: LiveTask, error: TaskError, now: number): void => {
  task.lastError = error
  if (task.failures < state.config.taskRetries && !isFinal(error)) {
    task.failures++
    requeue(state, task, now, now + backoffDelay(state, task.failures))
  } else {
    finish(state, task, false, null, error)
  }
}

/** A task that may still run: same attempt, placed on that worker (used by map and context calls). */
export const runningTask = (
  state: MachineState,
  taskId: string,
  attempt: number,
  workerId: string
): LiveTask | RejectedError => {
  const task = findTask(state, taskId)
  if (task === undefined) {
    return new RejectedError({
      reason: "unknown-task",
      message: `task ${taskId} is not running in ${state.instanceId}`
    })
  }
  if (attempt !== task.attempt) {
    return new RejectedError({
      reason: "stale-attempt",
      message: `task ${taskId} is at attempt ${task.attempt}, the call came from attempt ${attempt}`
    })
  }
  if (task.worker?.id !== workerId || task.status < TaskStatus.Dispatched) {
    return new RejectedError({ reason: "wrong-worker", message: `task ${taskId} is not placed on worker ${workerId}` })
  }
  return task
}

export const isPinned = (task: LiveTask): boolean => task.kind !== TaskKind.Sub
