import { RejectedError } from "../model/errors.ts"
import type { DispatchedTask, PullRequest, TaskBatch } from "../model/messages.ts"
import { TaskStatus } from "../model/status.ts"
import { taskfoldError } from "../model/task-error.ts"
import { checkTimeouts } from "./finalize.ts"
import { ChildBlock, hasChild, takeChild } from "./blocks.ts"
import { Batch, Dispatched, Send } from "./output.ts"
import { type LiveTask, type MachineState, type SentBatch, UNHEALTHY_STRIKES, type WorkerState } from "./state.ts"
import { acknowledge, assign, enqueue, finish, requeue, setStatus } from "./tasks.ts"
import { fromRetiredRun, touchWorker } from "./contact.ts"

type Plan = Map<WorkerState, LiveTask[]>

/**
 * Tasks a worker may still take: its slots plus the queue allowance, less what it holds and is about to get (R-DISP-2).
 */
const credit = (state: MachineState, worker: WorkerState, plan: Plan): number => {
  const room = worker.slots + state.config.queueAllowance - worker.held - (plan.get(worker)?.length ?? 0)
  // An unhealthy worker is probed with one task at a time until a batch gets through.
  return worker.strikes >= UNHEALTHY_STRIKES ? Math.min(room, 1 - worker.held) : room
}

/** The longest rest of an unhealthy worker, in heartbeat intervals. */
const MAX_REST_INTERVALS = 16

/**
 * A delivery to the worker got no receipt. From the second in a row it rests, twice as long each time up to
 * MAX_REST_INTERVALS heartbeats, so its share of the job shrinks to a probe (R-WIRE-3).
 */
const strike = (state: MachineState, worker: WorkerState, now: number): void => {
  worker.strikes++
  if (worker.strikes < UNHEALTHY_STRIKES) return
  const intervals = Math.min(MAX_REST_INTERVALS, 2 ** (worker.strikes - UNHEALTHY_STRIKES))
  worker.restUntil = now + intervals * state.config.heartbeatInterval
  if (worker.strikes === UNHEALTHY_STRIKES) {
    state.out.warnings.push(
      `worker ${worker.id} is unhealthy: ${worker.strikes} deliveries in a row got no receipt; it gets one task ` +
        "at a time until one does"
    )
  }
}

/** When the first resting worker may take work again, if tasks wait for it. */
export const nextRestEnd = (state: MachineState, now: number): number | null => {
  if (state.waiting.size === 0) return null
  let at: number | null = null
  for (const worker of state.workerList) {
    if (worker.restUntil > now && !worker.lost && (at === null || worker.restUntil < at)) at = worker.restUntil
  }
  return at
}

/** Next unpinned task that is still Waiting, taken off the queue, or undefined. */
const nextWaiting = (state: MachineState): LiveTask | undefined => {
  for (let head = state.waiting.peek(); head !== undefined; head = state.waiting.peek()) {
    if (head instanceof ChildBlock) {
      const child = takeChild(state, head)
      if (child !== undefined) return child
      state.waiting.shift()
      continue
    }
    state.waiting.shift()
    if (head.queued && head.status === TaskStatus.Waiting) {
      head.queued = false
      return head
    }
  }
  return undefined
}

/** Drops stale entries at the head of the waiting queue; true if a Waiting task is next. */
const hasWaiting = (state: MachineState): boolean => {
  for (let head = state.waiting.peek(); head !== undefined; head = state.waiting.peek()) {
    if (head instanceof ChildBlock ? hasChild(state, head) : head.queued && head.status === TaskStatus.Waiting)
      return true
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
const eligibleWorkers = (state: MachineState, now: number): WorkerState[] => {
  const usable = state.workerList.filter((worker) => worker.available && !worker.lost && worker.restUntil <= now)
  if (state.config.localWorker === "include") return usable
  // An unhealthy worker does not keep the work off the local one: it would get it all, a task at a time.
  const othersAlive = state.workerList.some(
    (worker) => !worker.isLocal && !worker.lost && worker.strikes < UNHEALTHY_STRIKES
  )
  return othersAlive ? usable.filter((worker) => !worker.isLocal) : usable
}

/** Index of the next worker with room, round-robin from where the last pick stopped, or -1. */
const pickRoundRobin = (state: MachineState, room: Int32Array): number => {
  for (let tries = 0; tries < room.length; tries++) {
    const at = state.cursor++ % room.length
    if (room[at]! > 0) return at
  }
  return -1
}

/** Another worker with room than `at`, if there is one; else `at`. */
const elsewhere = (room: Int32Array, at: number): number => {
  for (let other = 0; other < room.length; other++) if (other !== at && room[other]! > 0) return other
  return at
}

/** Index of the worker with the most room (the first of equals), or -1. */
const pickLeastLoaded = (_state: MachineState, room: Int32Array): number => {
  let best = -1
  let bestRoom = 0
  for (let at = 0; at < room.length; at++) {
    if (room[at]! > bestRoom) {
      best = at
      bestRoom = room[at]!
    }
  }
  return best
}

/**
 * Plans unpinned tasks onto the workers with credit: round-robin, continuing across rounds, or to the most
 * free worker (R-DISP-3). A worker is picked only for a task that is there, so the cursor continues where it stopped.
 */
const planUnpinned = (state: MachineState, plan: Plan, now: number): void => {
  const workers = eligibleWorkers(state, now)
  let budget = allowance(state, now)
  if (workers.length === 0) return
  const room = Int32Array.from(workers, (worker) => credit(state, worker, plan))
  const planned: LiveTask[][] = workers.map(() => [])
  /** Worker indexes in the order they were first picked: the order of their batches. */
  const order: number[] = []
  const pick = state.config.routing === "least-loaded" ? pickLeastLoaded : pickRoundRobin
  const deferred: LiveTask[] = []
  let sent = 0
  while (budget > 0 && hasWaiting(state)) {
    let at = pick(state, room)
    if (at < 0) break
    const task = nextWaiting(state)
    if (task === undefined) break
    if (task.missedOn !== undefined && task.missedOn === workers[at]!.id) {
      // A task goes back to the worker it missed on only when no other may take it: else it waits for one.
      const other = elsewhere(room, at)
      if (other === at && workers.some((worker, index) => index !== at && worker.slots > 0)) {
        deferred.push(task)
        continue
      }
      at = other
    }
    const list = planned[at] as LiveTask[]
    if (list.length === 0) order.push(at)
    list.push(task)
    room[at] = room[at]! - 1
    budget--
    sent++
  }
  if (state.rate !== null) state.tokens -= sent
  for (const task of deferred) enqueue(state, task)
  for (const at of order) {
    const worker = workers[at] as WorkerState
    const list = planned[at] as LiveTask[]
    const pinned = plan.get(worker)
    if (pinned === undefined) plan.set(worker, list)
    else for (const task of list) pinned.push(task)
  }
}

/**
 * Records tasks as Dispatched(worker, attempt) before they are sent (R-DISP-1) and builds their batch. The
 * params go along until the worker has taken a batch (R-DISP-10: not repeated in every batch).
 */
const recordBatch = (state: MachineState, worker: WorkerState, tasks: LiveTask[], now: number): TaskBatch => {
  const sent: SentBatch = {
    worker,
    seq: state.nextBatch++,
    at: now,
    withParams: !worker.paramsSent,
    tasks,
    pending: tasks.length
  }
  const dispatched: DispatchedTask[] = new Array(tasks.length)
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i] as LiveTask
    assign(task, worker)
    setStatus(state, task, TaskStatus.Dispatched)
    task.batch = sent
    task.sentSeq = sent.seq
    dispatched[i] = new Dispatched(task)
  }
  state.sentBatches.push(sent)
  state.batchesBySeq.set(sent.seq, sent)
  state.metaDirty = true
  // A map job keeps no results, so no limit applies to them (R-RETRY-3).
  const limit = state.kind === "map" ? undefined : state.config.maxResultBytes
  return new Batch(
    state.instanceId,
    state.job,
    worker.paramsSent ? undefined : state.params,
    limit,
    sent.seq,
    state.context as TaskBatch["context"],
    dispatched
  )
}

const sendAll = (state: MachineState, perWorker: Plan, now: number): void => {
  for (const [worker, tasks] of perWorker) {
    const size = Math.min(state.config.dispatchBatchSize, worker.batchLimit)
    for (let from = 0; from < tasks.length; from += size) {
      const chunk = tasks.length <= size ? tasks : tasks.slice(from, from + size)
      state.out.sends.push(new Send(worker.id, recordBatch(state, worker, chunk, now)))
    }
  }
}

/**
 * Sends every task that can go now (R-DISP-2): pinned ones to their worker (R-DISP-4), unpinned ones
 * to the workers with credit (R-DISP-3).
 */
export const dispatch = (state: MachineState, now: number): void => {
  if (state.outcome !== null) return
  const plan: Plan = new Map()
  for (const [workerId, queue] of state.pinned) {
    if (queue.size === 0) continue
    const worker = state.workers.get(workerId)
    if (worker === undefined || worker.lost || !worker.available) continue
    for (let task = queue.shift(); task !== undefined; task = queue.shift()) {
      if (!task.queued || task.status !== TaskStatus.Waiting) continue
      task.queued = false
      const list = plan.get(worker)
      if (list === undefined) plan.set(worker, [task])
      else list.push(task)
    }
  }
  if (state.config.dispatchMode === "push" && state.waiting.size > 0) planUnpinned(state, plan, now)
  sendAll(state, plan, now)
}

/** Pull mode: a worker takes up to pageSize sub-tasks, never past maxInFlight (R-DISP-9). */
export const pull = (state: MachineState, request: PullRequest, now: number): TaskBatch | null | RejectedError => {
  const known = state.workers.get(request.workerId)
  if (known !== undefined && fromRetiredRun(known, request.incarnation)) return null
  const worker = touchWorker(state, request.workerId, now)
  if (worker === undefined || worker.lost) {
    return new RejectedError({
      reason: "unknown-worker",
      message: `worker ${request.workerId} has not joined ${state.instanceId}`
    })
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

/**
 * A delivery that did not get through: back to Waiting, or failed once maxRedeliveries is used up (R-DISP-8,
 * R-DISP-10).
 */
export const redeliver = (state: MachineState, task: LiveTask, why: string, now: number): void => {
  acknowledge(state, task)
  task.redeliveries++
  state.out.redelivered++
  if (task.redeliveries > state.config.maxRedeliveries) {
    const error = taskfoldError("undeliverable", `not received after ${task.redeliveries} deliveries; the last: ${why}`)
    task.lastError = error
    finish(state, task, false, null, error)
  } else {
    requeue(state, task, now, null)
  }
}

/** Tasks not acknowledged within ackTimeout go back to Waiting, or fail after maxRedeliveries (R-DISP-8). */
export const expireBatches = (state: MachineState, now: number): void => {
  const timeout = state.config.ackTimeout
  for (
    let batch = state.sentBatches.peek();
    batch !== undefined && batch.at + timeout <= now;
    batch = state.sentBatches.peek()
  ) {
    state.sentBatches.shift()
    state.batchesBySeq.delete(batch.seq)
    let unreceived = false
    for (const task of batch.tasks) {
      if (task.batch !== batch || task.status !== TaskStatus.Dispatched) continue
      unreceived = true
      task.missedOn = batch.worker.id
      redeliver(state, task, `no receipt from ${batch.worker.id} within ackTimeout (${timeout} ms)`, now)
    }
    if (unreceived) strike(state, batch.worker, now)
  }
}

export const nextBatchExpiry = (state: MachineState): number | null => {
  for (let batch = state.sentBatches.peek(); batch !== undefined; batch = state.sentBatches.peek()) {
    if (batch.pending > 0) return batch.at + state.config.ackTimeout
    state.sentBatches.shift()
  }
  return null
}

/**
 * The worker took a batch (its send was answered): its tasks are Received (R-DISP-10). Receipt is the transport's
 * answer, given before any processor runs, so a busy processor never makes its batch look undelivered.
 */
export const delivered = (state: MachineState, workerId: string, seq: number, now: number): void => {
  const batch = state.batchesBySeq.get(seq)
  if (batch === undefined || batch.worker.id !== workerId) return
  batch.worker.paramsSent = true
  batch.worker.strikes = 0
  batch.worker.restUntil = 0
  const unseen = batch.worker.unseen
  unseen.push({ seq, at: now })
  // A worker whose heartbeats name no batch seq keeps none of these for long.
  if (unseen.length > 1_024) unseen.shift()
  for (const task of batch.tasks) {
    if (task.batch === batch && task.status === TaskStatus.Dispatched) {
      acknowledge(state, task)
      setStatus(state, task, TaskStatus.Received)
    }
  }
}

/**
 * A send failed (R-DISP-7, R-DISP-10). Refused for its size: the batch is split (the worker takes smaller ones
 * from now on) and a single task too large for any message fails. Any other failure counts toward
 * maxRedeliveries, and the worker rests until its next heartbeat.
 */
export const sendFailed = (
  state: MachineState,
  workerId: string,
  seq: number,
  tooLarge: boolean,
  error: string,
  now: number
): void => {
  const batch = state.batchesBySeq.get(seq)
  if (batch === undefined || batch.worker.id !== workerId) return
  const worker = batch.worker
  worker.paramsSent = false
  const tasks = batch.tasks.filter((task) => task.batch === batch && task.status === TaskStatus.Dispatched)
  if (tasks.length === 0) return
  state.out.warnings.push(`sending batch ${seq} (${tasks.length} tasks) to worker ${workerId} failed: ${error}`)
  // A worker that no longer has the params (it restarted) refuses a batch without them: sent again with them, not
  // counted.
  if (!tooLarge && !batch.withParams) {
    for (const task of tasks) requeue(state, task, now, null)
    return
  }
  if (!tooLarge) {
    worker.available = false
    strike(state, worker, now)
    for (const task of tasks) {
      task.missedOn = workerId
      redeliver(state, task, error, now)
    }
    return
  }
  if (batch.tasks.length > 1) {
    worker.batchLimit = Math.max(1, Math.floor(batch.tasks.length / 2))
    for (const task of tasks) requeue(state, task, now, null)
    return
  }
  for (const task of tasks) {
    const refused = taskfoldError(
      "too-large",
      `task ${task.id} does not fit in one message to worker ${workerId}: ${error}`
    )
    task.lastError = refused
    finish(state, task, false, null, refused)
  }
}

/** When the token bucket next holds a token, if tasks wait for one to be pushed. */
export const nextToken = (state: MachineState): number | null => {
  const rate = state.rate
  // Only push dispatch waits for a token: in pull mode the workers' pulls refill the bucket, and after the outcome
  // nothing is dispatched; either way the bucket is not refilled and the time would be in the past.
  if (
    rate === null ||
    state.config.dispatchMode === "pull" ||
    state.outcome !== null ||
    state.waiting.size === 0 ||
    state.tokens >= 1
  ) {
    return null
  }
  return state.tokensAt + Math.ceil(((1 - state.tokens) * rate.perMs) / rate.count)
}
