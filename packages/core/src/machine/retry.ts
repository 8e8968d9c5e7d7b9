import { RejectedError } from "../model/errors.ts"
import { TaskKind, TaskStatus } from "../model/status.ts"
import { nextRandom, utf8Length } from "./collections.ts"
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

/** A failed attempt: retried while failures < taskRetries, else terminal (R-RETRY-1, R-RETRY-2). */
export const failAttempt = (state: MachineState, task: LiveTask, error: string, now: number): void => {
  task.lastError = error
  if (task.failures < state.config.taskRetries) {
    task.failures++
    requeue(state, task, now, now + backoffDelay(state, task.failures))
  } else {
    finish(state, task, false, null, false, error)
  }
}

/** Cuts a result to maxResultBytes on a character boundary (R-RETRY-3); a result that fits is returned as it is. */
export const cutResult = (text: string, maxBytes: number): string => {
  if (text.length * 3 <= maxBytes || utf8Length(text) <= maxBytes) return text
  let low = 0
  let high = Math.min(text.length, maxBytes)
  while (low < high) {
    const mid = (low + high + 1) >> 1
    if (utf8Length(text.slice(0, mid)) <= maxBytes) low = mid
    else high = mid - 1
  }
  return text.slice(0, low)
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
    return new RejectedError({ reason: "unknown-task", message: `task ${taskId} is not running in ${state.instanceId}` })
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
