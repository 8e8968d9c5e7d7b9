import { Schema } from "effect"

/** Task states, in the order a task moves through them (SPEC §2). */
export const TaskStatus = {
  Waiting: 1,
  Dispatched: 2,
  Received: 3,
  Running: 4,
  Failed: 5,
  Succeeded: 6
} as const
export type TaskStatus = (typeof TaskStatus)[keyof typeof TaskStatus]

export const TaskStatusSchema = Schema.Literals([1, 2, 3, 4, 5, 6])

/** Statuses a worker may report; Waiting and Dispatched are the tracker's own. */
export const ReportedStatusSchema = Schema.Literals([3, 4, 5, 6])
export type ReportedStatus = typeof ReportedStatusSchema.Type

export const isTerminal = (status: number): boolean => status >= TaskStatus.Failed

export const statusName = (status: number): string =>
  ["?", "waiting", "dispatched", "received", "running", "failed", "succeeded"][status] ?? "?"

/** What a task is for; pinned kinds only ever run on their own worker (R-DISP-4). */
export const TaskKind = { Sub: 0, Root: 1, Final: 2, Broadcast: 3 } as const
export type TaskKind = (typeof TaskKind)[keyof typeof TaskKind]
export const TaskKindSchema = Schema.Literals([0, 1, 2, 3])

export const ROOT_NAME = "ROOT"
export const FINAL_NAME = "FINAL"
export const BROADCAST_NAME = "BROADCAST"
