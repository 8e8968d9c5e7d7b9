import type { NameProgress } from "../model/instance.ts"
import { TaskKind, TaskStatus } from "../model/status.ts"
import type { TaskBody, TaskRow, TaskUpdate } from "../model/task.ts"
import { Fifo } from "./collections.ts"
import type { LiveTask, MachineState, RunState, WorkerState } from "./state.ts"

type Bucket = Exclude<keyof NameProgress, "total">
const bucket = (status: number): Bucket =>
  status === TaskStatus.Waiting
    ? "waiting"
    : status === TaskStatus.Dispatched
      ? "dispatched"
      : status === TaskStatus.Failed
        ? "failed"
        : status === TaskStatus.Succeeded
          ? "succeeded"
          : "running"

const isRunning = (status: number) => status === TaskStatus.Received || status === TaskStatus.Running
const isInFlight = (status: number) => status >= TaskStatus.Dispatched && status <= TaskStatus.Running

export const nameCounter = (state: MachineState, name: string): NameProgress => {
  let counter = state.byName.get(name)
  if (counter === undefined) {
    counter = { total: 0, waiting: 0, dispatched: 0, running: 0, succeeded: 0, failed: 0 }
    state.byName.set(name, counter)
  }
  return counter
}

export const markDirty = (state: MachineState, task: LiveTask): void => {
  if (task.dirty === 0) {
    task.dirty = 1
    state.dirty.push(task)
  }
}

/** Creates a Waiting task and queues it. The caller checked that the id is new. */
export const createTask = (
  state: MachineState,
  run: RunState,
  init: { id: string; name: string; kind: TaskKind; body: TaskBody; pinnedTo: string | undefined }
): LiveTask => {
  const counter = nameCounter(state, init.name)
  counter.total++
  counter.waiting++
  const task: LiveTask = {
    id: init.id,
    seq: state.nextSeq++,
    run,
    name: init.name,
    kind: init.kind,
    body: init.body,
    counter,
    status: TaskStatus.Waiting,
    worker: undefined,
    pinnedTo: init.pinnedTo,
    attempt: 0,
    failures: 0,
    redeliveries: 0,
    childCount: 0,
    mapCursor: 0,
    dueAt: null,
    lastError: null,
    result: null,
    resultCut: false,
    batch: undefined,
    queued: false,
    dirty: 2
  }
  state.tasks.set(task.id, task)
  state.dirty.push(task)
  run.created++
  run.live++
  state.waitingCount++
  enqueue(state, task)
  return task
}

/** Moves a task to a status and keeps every counter that depends on it in step (R-FIN-1, R-PROG-1). */
export const setStatus = (state: MachineState, task: LiveTask, status: TaskStatus): void => {
  const from = task.status
  if (from === status) return
  task.counter[bucket(from)]--
  task.counter[bucket(status)]++
  if (from === TaskStatus.Waiting) state.waitingCount--
  if (status === TaskStatus.Waiting) state.waitingCount++
  const worker = task.worker
  if (worker !== undefined && worker.tasks.has(task)) {
    worker.running += (isRunning(status) ? 1 : 0) - (isRunning(from) ? 1 : 0)
  }
  if (task.kind === TaskKind.Sub) state.subInFlight += (isInFlight(status) ? 1 : 0) - (isInFlight(from) ? 1 : 0)
  task.status = status
  markDirty(state, task)
}

export const pinnedQueue = (state: MachineState, workerId: string): Fifo<LiveTask> => {
  let queue = state.pinned.get(workerId)
  if (queue === undefined) {
    queue = new Fifo()
    state.pinned.set(workerId, queue)
  }
  return queue
}

export const enqueue = (state: MachineState, task: LiveTask): void => {
  if (task.queued) return
  task.queued = true
  if (task.pinnedTo !== undefined) pinnedQueue(state, task.pinnedTo).push(task)
  else state.waiting.push(task)
}

export const assign = (task: LiveTask, worker: WorkerState): void => {
  task.worker = worker
  worker.tasks.add(task)
  if (isRunning(task.status)) worker.running++
}

const release = (task: LiveTask): void => {
  const worker = task.worker
  if (worker !== undefined && worker.tasks.delete(task) && isRunning(task.status)) worker.running--
}

/** The task left Dispatched: its batch no longer waits for it. */
export const acknowledge = (task: LiveTask): void => {
  const batch = task.batch
  if (batch === undefined) return
  task.batch = undefined
  if (--batch.pending === 0) batch.tasks = []
}

/** Back to Waiting with a new attempt (redelivery, failover, retry); pinned tasks keep their worker. */
export const requeue = (state: MachineState, task: LiveTask, now: number, dueAt: number | null): void => {
  acknowledge(task)
  release(task)
  task.worker = undefined
  task.attempt++
  task.mapCursor = 0
  setStatus(state, task, TaskStatus.Waiting)
  task.dueAt = dueAt
  if (dueAt !== null && dueAt > now) state.delayed.push(task)
  else enqueue(state, task)
}

/** Makes a task terminal: counted once, out of memory after this step's write (R-REC-2). */
export const finish = (
  state: MachineState,
  task: LiveTask,
  ok: boolean,
  result: string | null,
  resultCut: boolean,
  error: string | null
): void => {
  acknowledge(task)
  const worker = task.worker
  if (worker !== undefined) {
    release(task)
    if (ok) worker.succeeded++
    else worker.failed++
  }
  task.result = result
  task.resultCut = resultCut
  if (error !== null) task.lastError = error
  task.queued = false
  setStatus(state, task, ok ? TaskStatus.Succeeded : TaskStatus.Failed)
  state.tasks.delete(task.id)
  const run = task.run
  if (ok) run.succeeded++
  else run.failed++
  run.live--
  const text = ok ? (result ?? "null") : (error ?? "failed")
  if (task.kind === TaskKind.Root) run.rootOutcome = { ok, text }
  if (task.kind === TaskKind.Final) run.finalOutcome = { ok, text }
}

export const toRow = (task: LiveTask): TaskRow => ({
  ...toUpdate(task),
  run: task.run.n,
  name: task.name,
  kind: task.kind,
  body: task.body
})

export const toUpdate = (task: LiveTask): TaskUpdate => ({
  id: task.id,
  seq: task.seq,
  status: task.status,
  worker: task.worker?.id ?? null,
  attempt: task.attempt,
  failures: task.failures,
  redeliveries: task.redeliveries,
  childCount: task.childCount,
  dueAt: task.dueAt,
  result: task.result,
  resultCut: task.resultCut,
  lastError: task.lastError
})
