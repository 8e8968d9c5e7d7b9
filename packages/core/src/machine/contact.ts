/** What any message from a worker tells the tracker: that it is alive, how new the message is, which run sent it. */
import type { MachineState, WorkerState } from "./state.ts"

/** Incarnations of one worker remembered as retired. */
export const RETIRED_KEPT = 8

/** Any message from a worker shows it is alive. */
export const touchWorker = (state: MachineState, workerId: string, now: number): WorkerState | undefined => {
  const worker = state.workers.get(workerId)
  if (worker !== undefined && !worker.lost) worker.lastSeen = now
  return worker
}

/** Records a worker's message number; false if a later message of the worker came first. */
export const noteMessage = (worker: WorkerState, n: number): boolean => {
  if (n <= worker.lastMessage) return false
  worker.lastMessage = n
  return true
}

/** An incarnation the worker runtime names after its start time ("<9 base-36 digits of ms>-<uuid>"). */
const STARTED_AT = /^([0-9a-z]{9})-/

/**
 * Both incarnations name their start time and `incarnation` started first: a late message of an earlier run of
 * the worker, not a new run. (A tracker that resumed never saw the earlier run, so `retired` cannot tell.)
 */
export const startedBefore = (incarnation: string, current: string | undefined): boolean => {
  if (current === undefined) return false
  const started = STARTED_AT.exec(incarnation)?.[1]
  const currentStarted = STARTED_AT.exec(current)?.[1]
  return started !== undefined && currentStarted !== undefined && started < currentStarted
}

/**
 * A message from a run of the worker's process that a newer one replaced: it died, so its word that it holds a
 * task, or its wish for more, is out of date (R-WORK-2). Work it finished is still done.
 */
export const fromRetiredRun = (worker: WorkerState, incarnation: string | undefined): boolean =>
  incarnation !== undefined &&
  incarnation !== worker.incarnation &&
  (worker.retired.includes(incarnation) || startedBefore(incarnation, worker.incarnation))
