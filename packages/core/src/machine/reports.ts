import { RejectedError } from "../model/errors.ts"
import type { ReportBatch } from "../model/messages.ts"
import { TaskStatus } from "../model/status.ts"
import { createBroadcastTasks } from "./finalize.ts"
import { cutResult, failAttempt } from "./retry.ts"
import type { MachineState, ReportsReply } from "./state.ts"
import { TaskKind } from "../model/status.ts"
import { findTask } from "./blocks.ts"
import { acknowledge, finish, setStatus } from "./tasks.ts"
import { touchWorker } from "./workers.ts"

/**
 * Folds a batch of status reports into the instance (R-STATE-1..4, R-RETRY-1, R-RETRY-3).
 * Stale, regressing and repeated reports are dropped; they never count twice.
 */
export const applyReports = (state: MachineState, batch: ReportBatch, now: number): ReportsReply => {
  const reply = { applied: 0, dropped: 0, unknown: [] as string[], rejected: [] as Array<{ taskId: string; error: RejectedError }> }
  const worker = touchWorker(state, batch.workerId, now)
  for (const report of batch.reports) {
    const task = findTask(state, report.taskId)
    if (task === undefined) {
      reply.unknown.push(report.taskId)
      continue
    }
    if (report.attempt < task.attempt || report.status <= task.status) {
      reply.dropped++
      continue
    }
    if (report.attempt > task.attempt || task.worker === undefined || task.worker !== worker) {
      reply.rejected.push({
        taskId: report.taskId,
        error: new RejectedError({
          reason: report.attempt > task.attempt ? "stale-attempt" : "wrong-worker",
          message: `task ${task.id} attempt ${task.attempt} is placed on ${task.worker?.id ?? "no worker"}; the report came from ${batch.workerId} for attempt ${report.attempt}`
        })
      })
      continue
    }
    reply.applied++
    if (task.status === TaskStatus.Dispatched) acknowledge(task)
    switch (report.status) {
      case TaskStatus.Received:
      case TaskStatus.Running:
        setStatus(state, task, report.status)
        break
      case TaskStatus.Succeeded: {
        // A map job keeps no sub-task results (R-RETRY-3).
        if (state.kind === "map" && task.kind === TaskKind.Sub) finish(state, task, true, null, false, null)
        else {
          const full = report.result ?? "null"
          const text = cutResult(full, state.config.maxResultBytes)
          finish(state, task, true, text, text !== full, null)
        }
        if (task.kind === TaskKind.Root && state.kind === "broadcast") createBroadcastTasks(state, task)
        break
      }
      case TaskStatus.Failed:
        failAttempt(state, task, report.error ?? "failed", now)
        break
    }
  }
  return reply
}
