import { TaskKind, TaskStatus } from "../model/status.ts"
import type { TaskBody } from "../model/task.ts"
import { describeError, type TaskError } from "../model/task-error.ts"
import { Fifo } from "./collections.ts"
import { LiveTask, type MachineState, type NameCounter, type RunState, type WorkerState } from "./state.ts"

const isRunning = (status: number) => status === TaskStatus.Received || status === TaskStatus.Running
const isInFlight = (status: number) => status >= TaskStatus.Dispatched && status <= TaskStatus.Running

/** Moves one task from the counter of one status to another's (R-PROG-1); `running` counts Received and Running. */
const countMove = (counter: NameCounter, from: number, to: number): void => {
  switch (from) {
    case TaskStatus.Waiting:
      counter.waiting--
      break
    case TaskStatus.Dispatched:
      counter.dispatched--
      break
    case TaskStatus.Received:
    case TaskStatus.Running:
      counter.running--
  }
  switch (to) {
    case TaskStatus.Waiting:
      counter.waiting++
      break
    case TaskStatus.Dispatched:
      counter.dispatched++
      break
    case TaskStatus.Received:
    case TaskStatus.Running:
      counter.running++
      break
    case TaskStatus.Succeeded:
      counter.succeeded++
      break
    case TaskStatus.Failed:
      counter.failed++
  }
}

export const nameCounter = (state: MachineState, name: string): NameCounter => {
  let counter = state.byName.get(name)
  if (counter === undefined) {
    counter = { name, total: 0, waiting: 0, dispatched: 0, running: 0, succeeded: 0, failed: 0 }
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
  const task = new LiveTask(init.id, state.nextSeq++, run, init.kind, init.body, counter)
  task.pinnedTo = init.pinnedTo
  task.dirty = 2
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
  countMove(task.counter, from, status)
  if (from === TaskStatus.Waiting) state.waitingCount--
  if (status === TaskStatus.Waiting) state.waitingCount++
  // A task with a worker is placed on it until release (finish releases after its last status change).
  const worker = task.worker
  if (worker !== undefined) worker.running += (isRunning(status) ? 1 : 0) - (isRunning(from) ? 1 : 0)
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
  const pinnedTo = task.pinnedTo
  if (pinnedTo !== undefined) pinnedQueue(state, pinnedTo).push(task)
  else state.waiting.push(task)
}

export const assign = (task: LiveTask, worker: WorkerState): void => {
  task.worker = worker
  worker.held++
  if (isRunning(task.status)) worker.running++
}

/** The task is no longer placed on its worker; it keeps `worker` only to write it in its final row. */
const release = (task: LiveTask): void => {
  const worker = task.worker
  if (worker === undefined) return
  worker.held--
  if (isRunning(task.status)) worker.running--
}

/** Tasks placed on a worker, in the order they became live. */
export const tasksOn = (state: MachineState, worker: WorkerState): LiveTask[] => {
  const placed: LiveTask[] = []
  if (worker.held === 0) return placed
  for (const task of state.tasks.values()) if (task.worker === worker) placed.push(task)
  return placed
}

/** The task left Dispatched: its batch no longer waits for it. */
export const acknowledge = (state: MachineState, task: LiveTask): void => {
  const batch = task.batch
  if (batch === undefined) return
  task.batch = undefined
  if (--batch.pending === 0) {
    batch.tasks = []
    state.batchesBySeq.delete(batch.seq)
  }
}

/** Back to Waiting with a new attempt (redelivery, failover, retry); pinned tasks keep their worker. */
export const requeue = (state: MachineState, task: LiveTask, now: number, dueAt: number | null): void => {
  acknowledge(state, task)
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
  error: TaskError | null
): void => {
  acknowledge(state, task)
  task.result = result
  if (error !== null) task.lastError = error
  task.queued = false
  setStatus(state, task, ok ? TaskStatus.Succeeded : TaskStatus.Failed)
  const worker = task.worker
  if (worker !== undefined) {
    release(task)
    if (ok) worker.succeeded++
    else worker.failed++
  }
  state.tasks.delete(task.id)
  const run = task.run
  if (ok) run.succeeded++
  else {
    run.failed++
    // The first failures are named by the outcome (R-FIN-8).
    const lastError = task.lastError ?? { tag: "Error", message: "failed" }
    if (run.errors.length < state.config.maxReportedErrors) {
      run.errors.push({ taskId: task.id, name: task.name, attempt: task.attempt, error: lastError })
    }
  }
  run.live--
  const text = ok ? (result ?? "null") : describeError(task.lastError ?? { tag: "Error", message: "failed" })
  if (task.kind === TaskKind.Root) run.rootOutcome = { ok, text }
  if (task.kind === TaskKind.Final) run.finalOutcome = { ok, text }
}
