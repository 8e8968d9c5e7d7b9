import { RejectedError } from "../model/errors.ts"
import type { Heartbeat } from "../model/messages.ts"
import { TaskKind, TaskStatus } from "../model/status.ts"
import { taskfoldError } from "../model/task-error.ts"
import { abortRun } from "./finalize.ts"
import type { LiveTask, MachineState, ReplyValue, StandingWorker, WorkerState } from "./state.ts"
import { finish, requeue, tasksOn } from "./tasks.ts"
import { redeliver } from "./dispatch.ts"
import { noteMessage, RETIRED_KEPT, startedBefore } from "./contact.ts"

export const newWorker = (state: MachineState, id: string, now: number): WorkerState => ({
  id,
  isLocal: id === state.localWorkerId,
  standing: false,
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
  incarnation: undefined,
  retired: [],
  lastMessage: -1,
  paramsSent: false,
  batchLimit: state.config.dispatchBatchSize,
  unseen: [],
  strikes: 0,
  restUntil: 0
})

const aliveCount = (state: MachineState): number => {
  let alive = 0
  for (const worker of state.workerList) if (!worker.lost) alive++
  return alive
}

/**
 * A heartbeat naming a new incarnation: the worker's process restarted, and what the tracker had placed on
 * the old one is gone (R-WORK-2). False if the heartbeat comes from a retired or earlier incarnation (a late message).
 */
const adoptIncarnation = (state: MachineState, worker: WorkerState, heartbeat: Heartbeat, now: number): boolean => {
  const incarnation = heartbeat.incarnation
  if (incarnation === undefined || incarnation === worker.incarnation) return true
  if (worker.retired.includes(incarnation)) return false
  if (startedBefore(incarnation, worker.incarnation)) {
    worker.retired.push(incarnation)
    if (worker.retired.length > RETIRED_KEPT) worker.retired.shift()
    return false
  }
  const old = worker.incarnation
  worker.incarnation = incarnation
  worker.lastMessage = -1
  worker.paramsSent = false
  if (old === undefined) return true
  worker.unseen = []
  worker.retired.push(old)
  if (worker.retired.length > RETIRED_KEPT) worker.retired.shift()
  // What the old incarnation had taken is gone; what the new one took (from firstSeen on) is not. Batches
  // still on their way are left to their send's answer.
  const first = heartbeat.firstSeen ?? -1
  for (const task of tasksOn(state, worker)) {
    if (task.status !== TaskStatus.Received && task.status !== TaskStatus.Running) continue
    if (first < 0 || task.sentSeq < first) taskLost(state, task, "worker restarted", now)
  }
  return true
}

/**
 * Registers, refreshes or re-admits a worker (R-WORK-1, R-WORK-5) and reaps the tasks an idle worker forgot
 * (R-WORK-3): only tasks sent in batches the worker had seen when it wrote the heartbeat, and only if no later
 * message of the worker arrived first.
 */
export const applyHeartbeat = (state: MachineState, heartbeat: Heartbeat, now: number): ReplyValue | RejectedError => {
  let worker = state.workers.get(heartbeat.workerId)
  if (worker === undefined || worker.lost) {
    const limit = state.config.maxWorkers
    if (limit !== null && aliveCount(state) >= limit) {
      return new RejectedError({
        reason: "worker-limit",
        message: `instance ${state.instanceId} already has ${limit} workers`
      })
    }
  }
  const reply: ReplyValue = { _tag: "Heartbeat", reply: { dispatchMode: state.config.dispatchMode } }
  if (worker === undefined) {
    worker = newWorker(state, heartbeat.workerId, now)
    state.workers.set(worker.id, worker)
    state.workerList.push(worker)
  }
  if (!adoptIncarnation(state, worker, heartbeat, now)) return reply
  worker.lost = false
  worker.available = true
  worker.lastSeen = now
  // An older heartbeat than a message already taken tells nothing new about the worker's slots or tasks.
  if (heartbeat.n !== undefined && !noteMessage(worker, heartbeat.n)) return reply
  // What a peer announces is capped: one claiming the whole job cannot take it (R-WIRE-3).
  const cap = state.config.maxWorkerSlots
  worker.slots = Math.min(heartbeat.slots, cap)
  worker.freeSlots = Math.min(heartbeat.freeSlots, cap)
  worker.queueLength = heartbeat.queueLength
  const seen = heartbeat.seen ?? Number.POSITIVE_INFINITY
  // This incarnation took the batches from firstSeen to seen; one below firstSeen was taken by an earlier one, if at
  // all.
  const first = heartbeat.firstSeen ?? Number.NEGATIVE_INFINITY
  // Batches the transport delivered that this incarnation still has not taken ackTimeout later were lost between the
  // two, or died with an earlier incarnation (idle or busy with other tasks, it would have seen them): their tasks
  // are delivered again, counted.
  const never = new Set<number>()
  if (worker.unseen.length > 0) {
    const unseen: WorkerState["unseen"] = []
    for (const entry of worker.unseen) {
      if (entry.seq >= first && entry.seq <= seen) continue
      if (entry.at + state.config.ackTimeout <= now) never.add(entry.seq)
      else unseen.push(entry)
    }
    worker.unseen = unseen
  }
  if (worker.running > 0 && (heartbeat.idle || never.size > 0)) {
    for (const task of tasksOn(state, worker)) {
      if (task.status !== TaskStatus.Received && task.status !== TaskStatus.Running) continue
      if (never.has(task.sentSeq)) redeliver(state, task, `worker ${worker.id} never took batch ${task.sentSeq}`, now)
      else if (heartbeat.idle && task.sentSeq <= seen) taskLost(state, task, "worker lost its task", now)
    }
  }
  return reply
}

/** A non-terminal task whose worker is gone or forgot it (R-WORK-2). */
export const taskLost = (state: MachineState, task: LiveTask, reason: string, now: number): void => {
  const error = taskfoldError("worker-lost", `${reason}: ${task.worker?.id ?? task.pinnedTo ?? "its worker"}`)
  switch (task.kind) {
    case TaskKind.Root:
    case TaskKind.Final:
      abortRun(state, task.run, error, `${reason}: ${task.name} task ${task.id} cannot run`, now)
      return
    case TaskKind.Broadcast:
      finish(state, task, false, null, error)
      return
    case TaskKind.Sub:
      if (state.config.failover && state.config.frequent === null) requeue(state, task, now, null)
      else finish(state, task, false, null, error)
  }
}

export const loseWorker = (state: MachineState, worker: WorkerState, now: number, reason = "worker lost"): void => {
  worker.lost = true
  worker.available = false
  worker.paramsSent = false
  for (const task of tasksOn(state, worker)) taskLost(state, task, reason, now)
  const pinned = state.pinned.get(worker.id)
  if (pinned !== undefined) {
    for (const task of pinned) {
      if (task.queued && task.status === TaskStatus.Waiting) taskLost(state, task, reason, now)
    }
  }
  if (worker.standing) readmit(worker, now)
}

/**
 * A lost standing worker is capacity again at once (R-WORK-6). Whether the next send reaches the runtime that
 * went silent (only late, say) or starts a fresh one is the host's business: the run it names stays current
 * until a newer one heartbeats, so a runtime that was only late is taken back, and what any run says it holds
 * is judged by the batches it had seen (R-WORK-3).
 */
const readmit = (worker: WorkerState, now: number): void => {
  worker.unseen = []
  worker.lost = false
  worker.available = true
  worker.lastSeen = now
  worker.freeSlots = worker.slots
  worker.queueLength = 0
}

/**
 * Declares the host's standing workers (R-WORK-6): each is a candidate at once with its slots, known or not.
 * A stored instance's tasks on one are judged by its heartbeats from now on.
 */
export const declareStanding = (state: MachineState, standing: ReadonlyArray<StandingWorker>, now: number): void => {
  for (const { id, slots } of standing) {
    let worker = state.workers.get(id)
    if (worker === undefined) {
      worker = newWorker(state, id, now)
      state.workers.set(id, worker)
      state.workerList.push(worker)
    }
    worker.standing = true
    worker.lost = false
    worker.available = true
    worker.lastSeen = now
    worker.slots = slots
    worker.freeSlots = slots
  }
}

/**
 * The transport saw a worker end without its closing word (R-WORK-7): what it held is lost now, not after
 * workerTimeout.
 */
export const workerGone = (state: MachineState, workerId: string, reason: string, now: number): void => {
  const worker = state.workers.get(workerId)
  if (worker === undefined || worker.lost || worker.isLocal) return
  loseWorker(state, worker, now, `worker gone (${reason})`)
}

/**
 * The tracker's own thread was stalled (a processor in the same thread did long synchronous work): nothing
 * could reach it meanwhile, so the silence is its own, not the workers'. Their last contact and the sends
 * waiting for a receipt move on by the stall, so none of them is judged on it (R-DISP-10).
 */
export const creditStall = (state: MachineState, stall: number, now: number): void => {
  for (const worker of state.workerList) {
    worker.lastSeen = Math.min(now, worker.lastSeen + stall)
    for (const entry of worker.unseen) entry.at = Math.min(now, entry.at + stall)
  }
  for (const batch of state.sentBatches) batch.at = Math.min(now, batch.at + stall)
}

/**
 * Workers silent for workerTimeout are lost (R-WORK-1). The local worker lives in the tracker's own
 * process: it is never judged by its heartbeats, so it cannot retire while the instance is live (R-WORK-4).
 */
export const checkLiveness = (state: MachineState, now: number): void => {
  for (const worker of state.workerList) {
    if (worker.lost || worker.isLocal) continue
    if (worker.standing && worker.held === 0) {
      // Idle capacity owes no heartbeat; its silence counts from the send that starts it. One whose start failed
      // (R-DISP-7) is tried again a heartbeat interval later, since no heartbeat will come to clear it.
      if (worker.available) worker.lastSeen = now
      else if (now - worker.lastSeen >= state.config.heartbeatInterval) worker.available = true
      continue
    }
    if (now - worker.lastSeen > state.config.workerTimeout) loseWorker(state, worker, now)
  }
}

export const nextLivenessCheck = (state: MachineState): number | null => {
  let at: number | null = null
  for (const worker of state.workerList) {
    if (worker.lost || worker.isLocal) continue
    const idleStanding = worker.standing && worker.held === 0
    if (idleStanding && worker.available) continue
    const due = idleStanding
      ? worker.lastSeen + state.config.heartbeatInterval
      : worker.lastSeen + state.config.workerTimeout + 1
    if (at === null || due < at) at = due
  }
  return at
}
