import { parseRate, type JobConfig } from "../model/config.ts"
import type { JobKind } from "../model/instance.ts"
import { TaskKind, TaskStatus } from "../model/status.ts"
import { decodeTaskError } from "../model/task-error.ts"
import { ChurningMap } from "./collections.ts"
import { startRun } from "./frequent.ts"
import { Output } from "./output.ts"
import {
  LiveTask,
  newQueues,
  type MachineState,
  type RunState,
  type StandingWorker,
  type WorkerState
} from "./state.ts"
import { assign, enqueue, nameCounter, requeue } from "./tasks.ts"
import { declareStanding, newWorker } from "./workers.ts"
import type { StoredInstance } from "../model/store.ts"

export interface NewInstance {
  readonly instanceId: string
  readonly job: string
  readonly kind: JobKind
  readonly config: JobConfig
  /** JSON text of the instance's params; the root task's body. */
  readonly params: string
  readonly localWorkerId: string
  readonly seed: number
  /** The host's standing workers (R-WORK-6). */
  readonly standing?: ReadonlyArray<StandingWorker>
}

const baseState = (init: NewInstance, startedAt: number): MachineState => {
  const rate = init.config.dispatchRate === null ? null : parseRate(init.config.dispatchRate)
  return {
    instanceId: init.instanceId,
    job: init.job,
    kind: init.kind,
    config: init.config,
    params: init.params,
    localWorkerId: init.localWorkerId,
    startedAt,
    seed: init.seed | 0,
    nextSeq: 0,
    nextRun: 0,
    nextBatch: 0,
    batchesBySeq: new Map(),
    restoreProblem: null,
    context: {},
    contextBytes: 2,
    tasks: new ChurningMap(),
    runs: new Map(),
    history: [],
    workers: new Map(),
    workerList: [],
    cursor: 0,
    ...newQueues(),
    waitingCount: 0,
    subInFlight: 0,
    byName: new Map(),
    rate,
    tokens: rate?.count ?? 0,
    tokensAt: startedAt,
    nextTriggerAt: null,
    outcome: null,
    outcomeAcked: false,
    released: false,
    lastProgressAt: startedAt,
    metaDirty: true,
    dirty: [],
    deleteRuns: [],
    out: new Output()
  }
}

/** A new instance: the root task "0" is created at once; a frequent job's first trigger is due at once (R-FREQ-1). */
export const createInstance = (init: NewInstance, now: number): MachineState => {
  const state = baseState(init, now)
  if (init.config.frequent === null) {
    startRun(state, now)
  } else {
    state.nextRun = 1
    state.nextTriggerAt = now
  }
  declareStanding(state, init.standing ?? [], now)
  return state
}

/** A worker known from stored rows only: no slots until it heartbeats. */
const placeholderWorker = (state: MachineState, id: string, now: number): WorkerState => ({
  ...newWorker(state, id, now),
  available: false
})

/**
 * The stored rows against the stored counters (R-FIN-4): every created task has one row, terminal ones as
 * counted. A mismatch means the store lost or duplicated rows; undefined if all adds up.
 */
const rowsProblem = (stored: StoredInstance): string | undefined => {
  let created = 0
  let succeeded = 0
  let failed = 0
  for (const counters of stored.instance.runs) {
    created += counters.created
    succeeded += counters.succeeded
    failed += counters.failed
  }
  let terminalSucceeded = 0
  let terminalFailed = 0
  for (const count of stored.terminal) {
    if (count.status === TaskStatus.Succeeded) terminalSucceeded += count.count
    else terminalFailed += count.count
  }
  const ids = new Set<string>()
  for (const row of stored.live) ids.add(row.id)
  const rows = stored.live.length + terminalSucceeded + terminalFailed
  if (
    ids.size !== stored.live.length ||
    rows !== created ||
    terminalSucceeded !== succeeded ||
    terminalFailed !== failed
  ) {
    const repeated = ids.size === stored.live.length ? "" : `, ${stored.live.length - ids.size} of them repeated`
    return (
      "the store does not hold what the counters say: " +
      `counted created ${created}, succeeded ${succeeded}, failed ${failed}; ` +
      `stored ${rows} rows (${stored.live.length} live${repeated}, ` +
      `${terminalSucceeded} succeeded, ${terminalFailed} failed)`
    )
  }
  return undefined
}

/**
 * Resumes an instance from its store after the tracker restarted (R-REC-1). Terminal tasks stay as they
 * are; counters come from the instance row and are checked against the tasks (R-FIN-4). Tasks on remote
 * workers keep them: unacknowledged ones time out by R-DISP-8, the others are confirmed by the worker's
 * heartbeats or lost with it. Tasks on the old local worker died with the old process: they go back to
 * Waiting on the new local worker.
 */
export const restoreInstance = (
  stored: StoredInstance,
  localWorkerId: string,
  now: number,
  standing: ReadonlyArray<StandingWorker> = []
): MachineState => {
  const row = stored.instance
  const state = baseState(
    {
      instanceId: row.id,
      job: row.job,
      kind: row.kind,
      config: row.config,
      params: row.params,
      localWorkerId,
      seed: row.seed
    },
    row.startedAt
  )
  state.nextSeq = row.nextSeq
  state.nextRun = row.nextRun
  state.nextBatch = row.nextBatch ?? 0
  if (row.outcome === null) state.restoreProblem = rowsProblem(stored) ?? null
  state.nextTriggerAt = row.nextTriggerAt
  state.context = row.context
  state.contextBytes = JSON.stringify(row.context).length
  state.history.push(...row.history)
  state.outcome = row.outcome
  state.outcomeAcked = row.outcomeAcked
  state.lastProgressAt = now
  state.tokensAt = now
  state.metaDirty = false
  const timeout = row.config.instanceTimeout
  for (const counters of row.runs) {
    const run: RunState = {
      n: counters.run,
      rootId: String(counters.run),
      startedAt: counters.startedAt,
      timeoutAt: timeout === null ? null : counters.startedAt + timeout,
      created: counters.created,
      succeeded: counters.succeeded,
      failed: counters.failed,
      live: 0,
      pendingMaps: 0,
      finalCreated: counters.finalCreated,
      errors: [...(counters.errors ?? [])],
      rootOutcome: counters.rootFailed === true ? { ok: false, text: "the root task failed" } : undefined,
      finalOutcome: undefined,
      // An outcome decided before the restart closes every run: nothing is created or run for it again.
      done: row.outcome !== null
    }
    state.runs.set(run.n, run)
  }
  for (const count of stored.terminal) {
    const counter = nameCounter(state, count.name)
    counter.total += count.count
    counter[count.status === TaskStatus.Succeeded ? "succeeded" : "failed"] += count.count
  }
  const unacknowledged: LiveTask[] = []
  for (const taskRow of stored.live) {
    const run = state.runs.get(taskRow.run)
    if (run === undefined) continue
    const counter = nameCounter(state, taskRow.name)
    counter.total++
    const pinnedTo =
      taskRow.kind === TaskKind.Root || taskRow.kind === TaskKind.Final
        ? localWorkerId
        : taskRow.kind === TaskKind.Broadcast
          ? (taskRow.worker ?? undefined)
          : undefined
    const task = new LiveTask(taskRow.id, taskRow.seq, run, taskRow.kind, taskRow.body, counter)
    task.status = taskRow.status
    task.pinnedTo = pinnedTo
    task.attempt = taskRow.attempt
    task.failures = taskRow.failures
    task.redeliveries = taskRow.redeliveries
    task.childCount = taskRow.childCount
    task.dueAt = taskRow.dueAt
    task.lastError = taskRow.lastError === null ? null : decodeTaskError(taskRow.lastError)
    counter[
      taskRow.status === TaskStatus.Waiting
        ? "waiting"
        : taskRow.status === TaskStatus.Dispatched
          ? "dispatched"
          : "running"
    ]++
    if (taskRow.status === TaskStatus.Waiting) state.waitingCount++
    else if (task.kind === TaskKind.Sub) state.subInFlight++
    state.tasks.set(task.id, task)
    run.live++
    if (taskRow.status === TaskStatus.Waiting) {
      if (task.dueAt !== null && task.dueAt > now) state.delayed.push(task)
      else enqueue(state, task)
      continue
    }
    const workerId = taskRow.worker ?? row.localWorker
    let worker = state.workers.get(workerId)
    if (worker === undefined) {
      // The new local worker, when it keeps its id, is never judged by heartbeats (R-WORK-4).
      worker = placeholderWorker(state, workerId, now)
      state.workers.set(workerId, worker)
      state.workerList.push(worker)
    }
    assign(task, worker)
    // The store keeps no map cursor: a first attempt has mapped exactly childCount items, but a later attempt
    // may be anywhere in its re-mapping, so it runs again from its first item (R-MAP-2, R-REC-1).
    if (workerId === row.localWorker || (task.attempt > 0 && task.childCount > 0)) requeue(state, task, now, null)
    else {
      task.mapCursor = task.childCount
      if (task.status === TaskStatus.Dispatched) unacknowledged.push(task)
    }
  }
  // Per-worker progress counts terminal tasks too (R-PROG-1); a worker known only from them is lost until it
  // heartbeats.
  for (const count of stored.terminal) {
    if (count.worker === null) continue
    let worker = state.workers.get(count.worker)
    if (worker === undefined) {
      worker = placeholderWorker(state, count.worker, now)
      worker.lost = count.worker !== localWorkerId
      state.workers.set(worker.id, worker)
      state.workerList.push(worker)
    }
    worker[count.status === TaskStatus.Succeeded ? "succeeded" : "failed"] += count.count
  }
  const oldLocal = state.workers.get(row.localWorker)
  if (oldLocal !== undefined && row.localWorker !== localWorkerId) oldLocal.lost = true
  if (unacknowledged.length > 0) {
    const batch = {
      worker: unacknowledged[0]!.worker!,
      seq: -1,
      at: now,
      withParams: true,
      tasks: unacknowledged,
      pending: unacknowledged.length
    }
    for (const task of unacknowledged) task.batch = batch
    state.sentBatches.push(batch)
    state.batchesBySeq.set(batch.seq, batch)
  }
  // A restored instance has no map calls in flight: their callers got no answer and will fail or retry.
  if (
    state.outcome === null &&
    state.config.frequent !== null &&
    state.nextTriggerAt === null &&
    state.runs.size === 0
  ) {
    state.nextTriggerAt = now
  }
  declareStanding(state, standing, now)
  return state
}
