import { RejectedError } from "../model/errors.ts"
import type { ReportBatch, StatusReport } from "../model/messages.ts"
import { isTerminal, TaskKind, TaskStatus } from "../model/status.ts"
import { taskfoldError, toTaskError, type TaskError } from "../model/task-error.ts"
import { utf8Length } from "./collections.ts"
import { createBroadcastTasks } from "./finalize.ts"
import { failAttempt } from "./retry.ts"
import type { LiveTask, MachineState } from "./state.ts"
import type { ReportsReply } from "../model/messages.ts"
import { findTask } from "./blocks.ts"
import { acknowledge, finish, setStatus } from "./tasks.ts"
import { fromRetiredRun, noteMessage, touchWorker } from "./contact.ts"

/** A failure as reported: a TaskError, or plain text from an older or hand-written worker. */
const reportedError = (report: StatusReport): TaskError =>
  report.error === undefined
    ? { tag: "Error", message: "failed" }
    : typeof report.error === "string"
      ? { tag: "Error", message: report.error }
      : toTaskError(report.error)

/** A result over maxResultBytes fails its task alone, never cut, never retried: it would fail again (R-RETRY-3). */
const tooLarge = (state: MachineState, task: LiveTask, result: string): TaskError | undefined => {
  const limit = state.config.maxResultBytes
  if (result.length * 3 <= limit) return undefined
  const size = utf8Length(result)
  if (size <= limit) return undefined
  return taskfoldError(
    "result-too-large",
    `the result of task ${task.id} is ${size} bytes of UTF-8; maxResultBytes is ${limit}`
  )
}

/**
 * Folds a batch of status reports into the instance (R-STATE-1..4, R-RETRY-1, R-RETRY-3).
 * Stale, regressing and repeated reports are dropped; they never count twice.
 */
export const applyReports = (state: MachineState, batch: ReportBatch, now: number): ReportsReply => {
  const reply = {
    applied: 0,
    dropped: 0,
    unknown: [] as string[],
    rejected: [] as Array<{ taskId: string; error: RejectedError }>
  }
  const known = state.workers.get(batch.workerId)
  // A retired run's late reports neither count as the worker's messages nor say that it holds a task.
  const retired = known !== undefined && fromRetiredRun(known, batch.incarnation)
  const worker = retired ? known : touchWorker(state, batch.workerId, now)
  if (worker !== undefined && !retired && batch.n !== undefined) noteMessage(worker, batch.n)
  for (const report of batch.reports) {
    const task = findTask(state, report.taskId)
    if (task === undefined) {
      reply.unknown.push(report.taskId)
      continue
    }
    if (report.attempt < task.attempt || report.status <= task.status || (retired && !isTerminal(report.status))) {
      reply.dropped++
      continue
    }
    if (report.attempt > task.attempt || task.worker === undefined || task.worker !== worker) {
      reply.rejected.push({
        taskId: report.taskId,
        error: new RejectedError({
          reason: report.attempt > task.attempt ? "stale-attempt" : "wrong-worker",
          message:
            `task ${task.id} attempt ${task.attempt} is placed on ${task.worker?.id ?? "no worker"}; ` +
            `the report came from ${batch.workerId} for attempt ${report.attempt}`
        })
      })
      continue
    }
    reply.applied++
    if (task.status === TaskStatus.Dispatched) acknowledge(state, task)
    switch (report.status) {
      case TaskStatus.Received:
      case TaskStatus.Running:
        setStatus(state, task, report.status)
        break
      case TaskStatus.Succeeded: {
        // A map job keeps no results (R-RETRY-3), so no size limit applies to them.
        if (state.kind === "map") {
          finish(state, task, true, null, null)
          break
        }
        const result = report.result ?? "null"
        const refused = tooLarge(state, task, result)
        if (refused !== undefined) {
          task.lastError = refused
          finish(state, task, false, null, refused)
          break
        }
        finish(state, task, true, result, null)
        if (task.kind === TaskKind.Root && state.kind === "broadcast") createBroadcastTasks(state, task)
        break
      }
      case TaskStatus.Failed:
        failAttempt(state, task, reportedError(report), now)
        break
    }
  }
  return reply
}
