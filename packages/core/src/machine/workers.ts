import { RejectedError } from "../model/errors.ts"
import type { Heartbeat } from "../model/messages.ts"
import { TaskKind, TaskStatus } from "../model/status.ts"
import { abortRun } from "./finalize.ts"
import type { LiveTask, MachineState, WorkerState } from "./state.ts"
import { finish, requeue, tasksOn } from "./tasks.ts"

/** Any message from a worker shows it is alive. */
export const touchWorker = (state: MachineState, workerId: string, now: number): WorkerState | undefined => {
  const worker = state.workers.get(workerId)
  if (worker !== undefined && !worker.lost) worker.lastSeen = now
  return worker
}

const aliveCount = (state: MachineState): number => {
  let alive = 0
  for (const worker of state.workerList) if (!worker.lost) alive++
  return alive
}

/** Registers, refreshes or re-admits a worker (R-WORK-1, R-WORK-5) and reaps the tasks an idle worker forgot (R-WORK-3). */
export const applyHeartbeat = (state: MachineState, heartbeat: Heartbeat, now: number): RejectedError | undefined => {
  let worker = state.workers.get(heartbeat.workerId)
  if (worker === undefined || worker.lost) {
    const limit = state.config.maxWorkers
    if (limit !== null && aliveCount(state) >= limit) {
      return new RejectedError({ reason: "worker-limit", message: `instance ${state.instanceId} already has ${limit} workers` })
    }
  }
  if (worker === undefined) {
    worker = {
      id: heartbeat.workerId,
      isLocal: heartbeat.workerId === state.localWorkerId,
      slots: 0,
      freeSlots: 0,
      queueLength: 0,
      lastSeen: now,
      available: true,
      lost: false,
      held: 0,
      running: 0,
      succeeded: 0,
      failed: 0,
      nextSeq: 0
    }
    state.workers.set(worker.id, worker)
    state.workerList.push(worker)
  }
  worker.lost = false
  worker.available = true
  worker.slots = heartbeat.slots
  worker.freeSlots = heartbeat.freeSlots
  worker.queueLength = heartbeat.queueLength
  worker.lastSeen = now
  if (heartbeat.idle && worker.running > 0) {
    for (const task of tasksOn(state, worker)) {
      if (task.status === TaskStatus.Received || task.status === TaskStatus.Running) taskLost(state, task, "worker lost its task", now)
    }
  }
  return undefined
}

/** A non-terminal task whose worker is gone or forgot it (R-WORK-2). */
export const taskLost = (state: MachineState, task: LiveTask, reason: string, now: number): void => {
  switch (task.kind) {
    case TaskKind.Root:
    case TaskKind.Final:
      abortRun(state, task.run, reason, `${reason}: ${task.name} task ${task.id} cannot run`, now)
      return
    case TaskKind.Broadcast:
      finish(state, task, false, null, false, reason)
      return
    case TaskKind.Sub:
      if (state.config.failover && state.config.frequent === null) requeue(state, task, now, null)
      else finish(state, task, false, null, false, reason)
  }
}

export const loseWorker = (state: MachineState, worker: WorkerState, now: number): void => {
  worker.lost = true
  worker.available = false
  for (const task of tasksOn(state, worker)) taskLost(state, task, "worker lost", now)
  const pinned = state.pinned.get(worker.id)
  if (pinned !== undefined) {
    for (const task of pinned) {
      if (task.queued && task.status === TaskStatus.Waiting) taskLost(state, task, "worker lost", now)
    }
  }
}

/**
 * Workers silent for workerTimeout are lost (R-WORK-1). The local worker lives in the tracker's own
 * process: it is never judged by its heartbeats, so it cannot retire while the instance is live (R-WORK-4).
 */
export const checkLiveness = (state: MachineState, now: number): void => {
  for (const worker of state.workerList) {
    if (!worker.lost && !worker.isLocal && now - worker.lastSeen > state.config.workerTimeout) loseWorker(state, worker, now)
  }
}

export const nextLivenessCheck = (state: MachineState): number | null => {
  let at: number | null = null
  for (const worker of state.workerList) {
    if (worker.lost || worker.isLocal) continue
    const due = worker.lastSeen + state.config.workerTimeout + 1
    if (at === null || due < at) at = due
  }
  return at
}
