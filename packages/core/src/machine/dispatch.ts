import { RejectedError } from "../model/errors.ts"
import type { DispatchedTask, PullRequest, TaskBatch } from "../model/messages.ts"
import { TaskStatus } from "../model/status.ts"
import { checkTimeouts } from "./finalize.ts"
import type { LiveTask, MachineState, SentBatch, WorkerState } from "./state.ts"
import { acknowledge, assign, finish, requeue, setStatus } from "./tasks.ts"
import { touchWorker } from "./workers.ts"

type Plan = Map<WorkerState, LiveTask[]>

/** Tasks a worker may still take: its slots plus the queue allowance, less what it holds and is about to get (R-DISP-2). */
const credit = (state: MachineState, worker: WorkerState, plan: Plan): number =>
  worker.slots + state.config.queueAllowance - worker.tasks.size - (plan.get(worker)?.length ?? 0)

/** Next unpinned task that is still Waiting, or undefined. */
const nextWaiting = (state: MachineState): LiveTask | undefined => {
  for (;;) {
    const task = state.waiting.shift()
    if (task === undefined) return undefined
    if (task.queued && task.status === TaskStatus.Waiting) {
      task.queued = false
      return task
    }
  }
}

/** Drops stale entries at the head of the waiting queue; true if a Waiting task is next. */
const hasWaiting = (state: MachineState): boolean => {
  for (let task = state.waiting.peek(); task !== undefined; task = state.waiting.peek()) {
    if (task.queued && task.status === TaskStatus.Waiting) return true
    state.waiting.shift()
  }
  return false
}

/** Refills the token bucket of dispatchRate and tells how many sub-tasks may go now (R-DISP-6). */
const allowance = (state: MachineState, now: number): number => {
  const rate = state.rate
  if (rate === null) return Number.POSITIVE_INFINITY
  state.tokens = Math.min(rate.count, state.tokens + ((now - state.tokensAt) * rate.count) / rate.perMs)
  state.tokensAt = now
  return Math.floor(state.tokens)
}

/** Workers that may take unpinned tasks; the local one only if it is alone or allowed (R-DISP-5). */
const eligibleWorkers = (state: MachineState): WorkerState[] => {
  const usable = state.workerList.filter((worker) => worker.available && !worker.lost)
  if (state.config.localWorker === "include") return usable
  const othersAlive = state.workerList.some((worker) => !worker.isLocal && !worker.lost)
  return othersAlive ? usable.filter((worker) => !worker.isLocal) : usable
}

const pickRoundRobin = (state: MachineState, workers: WorkerState[], plan: Plan): WorkerState | undefined => {
  for (let tries = 0; tries < workers.length; tries++) {
    const worker = workers[state.cursor++ % workers.length] as WorkerState
    if (credit(state, worker, plan) > 0) return worker
  }
  return undefined
}

const pickLeastLoaded = (state: MachineState, workers: WorkerState[], plan: Plan): WorkerState | undefined => {
  let best: WorkerState | undefined
  let bestCredit = 0
  for (const worker of workers) {
    const free = credit(state, worker, plan)
    if (free > bestCredit) {
      best = worker
      bestCredit = free
    }
  }
  return best
}

/** Records tasks as Dispatched(worker, attempt) before they are sent (R-DISP-1) and builds their batch. */
const recordBatch = (state: MachineState, worker: WorkerState, tasks: LiveTask[], now: number): TaskBatch => {
  const sent: SentBatch = { worker, seq: worker.nextSeq++, at: now, tasks, pending: tasks.length }
  const dispatched: DispatchedTask[] = new Array(tasks.length)
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i] as LiveTask
    assign(task, worker)
    setStatus(state, task, TaskStatus.Dispatched)
    task.batch = sent
    dispatched[i] = { id: task.id, name: task.name, kind: task.kind, body: task.body, attempt: task.attempt }
  }
  state.sentBatches.push(sent)
  return {
    instanceId: state.instanceId,
    job: state.job,
    params: state.params,
    seq: sent.seq,
    context: state.context as TaskBatch["context"],
    tasks: dispatched
  }
}

const sendAll = (state: MachineState, perWorker: Plan, now: number): void => {
  const size = state.config.dispatchBatchSize
  for (const [worker, tasks] of perWorker) {
    for (let from = 0; from < tasks.length; from += size) {
      const chunk = tasks.length <= size ? tasks : tasks.slice(from, from + size)
      state.out.sends.push({ workerId: worker.id, batch: recordBatch(state, worker, chunk, now) })
    }
  }
}

const add = (perWorker: Plan, worker: WorkerState, task: LiveTask) => {
  const list = perWorker.get(worker)
  if (list === undefined) perWorker.set(worker, [task])
  else list.push(task)
}

/**
 * Sends every task that can go now (R-DISP-2): pinned ones to their worker (R-DISP-4), unpinned ones
 * round-robin from where the last round stopped, or to the most free worker (R-DISP-3).
 */
export const dispatch = (state: MachineState, now: number): void => {
  if (state.outcome !== null) return
  const perWorker: Plan = new Map()
  for (const [workerId, queue] of state.pinned) {
    if (queue.size === 0) continue
    const worker = state.workers.get(workerId)
    if (worker === undefined || worker.lost || !worker.available) continue
    for (let task = queue.shift(); task !== undefined; task = queue.shift()) {
      if (!task.queued || task.status !== TaskStatus.Waiting) continue
      task.queued = false
      add(perWorker, worker, task)
    }
  }
  if (state.config.dispatchMode === "push" && state.waiting.size > 0) {
    const workers = eligibleWorkers(state)
    let budget = allowance(state, now)
    const pick = state.config.routing === "least-loaded" ? pickLeastLoaded : pickRoundRobin
    let sent = 0
    // A worker is picked only for a task that is there, so the round-robin cursor continues where it stopped (R-DISP-3).
    while (budget > 0 && workers.length > 0 && hasWaiting(state)) {
      const worker = pick(state, workers, perWorker)
      if (worker === undefined) break
      const task = nextWaiting(state)
      if (task === undefined) break
      add(perWorker, worker, task)
      budget--
      sent++
    }
    if (state.rate !== null) state.tokens -= sent
  }
  sendAll(state, perWorker, now)
}

/** Pull mode: a worker takes up to pageSize sub-tasks, never past maxInFlight (R-DISP-9). */
export const pull = (state: MachineState, request: PullRequest, now: number): TaskBatch | null | RejectedError => {
  const worker = touchWorker(state, request.workerId, now)
  if (worker === undefined || worker.lost) {
    return new RejectedError({ reason: "unknown-worker", message: `worker ${request.workerId} has not joined ${state.instanceId}` })
  }
  // A run past its timeout ends before a task of it is handed out, as it does before a push (R-FIN-5).
  checkTimeouts(state, now)
  if (state.outcome !== null) return null
  const room = Math.min(
    request.pageSize,
    state.config.dispatchBatchSize,
    state.config.maxInFlight - state.subInFlight,
    allowance(state, now)
  )
  const tasks: LiveTask[] = []
  while (tasks.length < room) {
    const task = nextWaiting(state)
    if (task === undefined) break
    tasks.push(task)
  }
  if (tasks.length === 0) return null
  if (state.rate !== null) state.tokens -= tasks.length
  return recordBatch(state, worker, tasks, now)
}

/** Tasks not acknowledged within ackTimeout go back to Waiting, or fail after maxRedeliveries (R-DISP-8). */
export const expireBatches = (state: MachineState, now: number): void => {
  const timeout = state.config.ackTimeout
  for (let batch = state.sentBatches.peek(); batch !== undefined && batch.at + timeout <= now; batch = state.sentBatches.peek()) {
    state.sentBatches.shift()
    for (const task of batch.tasks) {
      if (task.batch !== batch || task.status !== TaskStatus.Dispatched) continue
      acknowledge(task)
      task.redeliveries++
      if (task.redeliveries > state.config.maxRedeliveries) {
        finish(state, task, false, null, false, `undeliverable: not received after ${task.redeliveries} deliveries`)
      } else {
        requeue(state, task, now, null)
      }
    }
  }
}

export const nextBatchExpiry = (state: MachineState): number | null => {
  for (let batch = state.sentBatches.peek(); batch !== undefined; batch = state.sentBatches.peek()) {
    if (batch.pending > 0) return batch.at + state.config.ackTimeout
    state.sentBatches.shift()
  }
  return null
}

/** A send failed: its tasks go back to Waiting (not a task failure), the worker rests until it heartbeats (R-DISP-7). */
export const sendFailed = (state: MachineState, workerId: string, seq: number, now: number): void => {
  const worker = state.workers.get(workerId)
  if (worker === undefined) return
  worker.available = false
  for (const batch of state.sentBatches) {
    if (batch.worker !== worker || batch.seq !== seq) continue
    for (const task of batch.tasks) {
      if (task.batch === batch && task.status === TaskStatus.Dispatched) requeue(state, task, now, null)
    }
  }
}

/** When the token bucket next holds a token, if tasks wait for one to be pushed. */
export const nextToken = (state: MachineState): number | null => {
  const rate = state.rate
  // Only push dispatch waits for a token: in pull mode the workers' pulls refill the bucket, and after the outcome
  // nothing is dispatched; either way the bucket is not refilled and the time would be in the past.
  if (rate === null || state.config.dispatchMode === "pull" || state.outcome !== null || state.waiting.size === 0 || state.tokens >= 1) {
    return null
  }
  return state.tokensAt + Math.ceil(((1 - state.tokens) * rate.perMs) / rate.count)
}
