import { RejectedError } from "../model/errors.ts"
import type { InstanceRow } from "../model/instance.ts"
import { TaskStatus } from "../model/status.ts"
import type { TaskRow, TaskUpdate } from "../model/task.ts"
import {
  delivered,
  dispatch,
  expireBatches,
  nextBatchExpiry,
  nextRestEnd,
  nextToken,
  pull,
  sendFailed
} from "./dispatch.ts"
import {
  checkRestored,
  checkRuns,
  checkTimeouts,
  kill,
  nextTimeout,
  outcomeAcknowledged,
  storageFailed
} from "./finalize.ts"
import { triggerRuns } from "./frequent.ts"
import { admitPendingMaps, applyMap } from "./mapping.ts"
import { appendContext, pushProgress } from "./progress.ts"
import { applyReports } from "./reports.ts"
import { Output, Update, Write } from "./output.ts"
import type { MachineEvent, MachineState, StepOutput } from "./state.ts"
import { ChildBlock, settleBlock } from "./blocks.ts"
import { blockRows, toRow } from "./rows.ts"
import { enqueue } from "./tasks.ts"
import { applyHeartbeat, checkLiveness, creditStall, nextLivenessCheck, workerGone } from "./workers.ts"

const handle = (state: MachineState, event: MachineEvent, now: number): void => {
  const replies = state.out.replies
  switch (event._tag) {
    case "Map":
      return applyMap(state, event.request, [event.reply], now)
    case "Reports":
      replies.push({ id: event.reply, value: { _tag: "Reports", reply: applyReports(state, event.batch, now) } })
      return
    case "Heartbeat":
      replies.push({ id: event.reply, value: applyHeartbeat(state, event.heartbeat, now) })
      return
    case "Pull": {
      const batch = pull(state, event.request, now)
      replies.push({ id: event.reply, value: batch instanceof RejectedError ? batch : { _tag: "Pulled", batch } })
      return
    }
    case "Context": {
      const accepted = appendContext(state, event.request, now)
      replies.push({ id: event.reply, value: typeof accepted === "boolean" ? { _tag: "Context", accepted } : accepted })
      return
    }
    case "Kill":
      replies.push({ id: event.reply, value: kill(state, event.taskId, event.reason, now) ?? { _tag: "Ack" } })
      return
    case "Stalled":
      return creditStall(state, event.ms, now)
    case "Delivered":
      return delivered(state, event.workerId, event.seq, now)
    case "SendFailed":
      return sendFailed(state, event.workerId, event.seq, event.tooLarge, event.error, now)
    case "StoreFailed":
      return storageFailed(state, event.cause, now)
    case "WorkerGone":
      return workerGone(state, event.workerId, event.reason, now)
    case "OutcomeAcked":
      return outcomeAcknowledged(state)
    case "Tick":
      return
  }
}

/** Retries whose backoff is over join the waiting queue. */
const releaseDue = (state: MachineState, now: number): void => {
  for (let task = state.delayed.peek(); task !== undefined && (task.dueAt ?? 0) <= now; task = state.delayed.peek()) {
    state.delayed.pop()
    if (task.status === TaskStatus.Waiting) enqueue(state, task)
  }
}

export const instanceRow = (state: MachineState): InstanceRow => ({
  id: state.instanceId,
  job: state.job,
  kind: state.kind,
  config: state.config,
  params: state.params,
  localWorker: state.localWorkerId,
  startedAt: state.startedAt,
  seed: state.seed,
  nextSeq: state.nextSeq,
  nextRun: state.nextRun,
  nextBatch: state.nextBatch,
  nextTriggerAt: state.nextTriggerAt,
  context: state.context as InstanceRow["context"],
  runs: [...state.runs.values()].map((run) => ({
    run: run.n,
    startedAt: run.startedAt,
    created: run.created,
    succeeded: run.succeeded,
    failed: run.failed,
    finalCreated: run.finalCreated,
    errors: [...run.errors],
    rootFailed: run.rootOutcome?.ok === false
  })),
  history: [...state.history],
  outcome: state.outcome,
  outcomeAcked: state.outcomeAcked
})

/** Everything this step changed, as one write batch (group commit). */
const flush = (state: MachineState): void => {
  if (state.dirty.length === 0 && state.deleteRuns.length === 0 && !state.metaDirty) return
  const inserts: TaskRow[] = []
  const updates: TaskUpdate[] = []
  for (const entry of state.dirty) {
    if (entry instanceof ChildBlock) {
      blockRows(entry, inserts)
      settleBlock(entry)
      continue
    }
    if (entry.dirty === 2) inserts.push(toRow(entry))
    else updates.push(new Update(entry))
    entry.dirty = 0
  }
  state.out.write = new Write(instanceRow(state), inserts, updates, state.deleteRuns, state.released)
  state.dirty = []
  state.deleteRuns = []
  state.metaDirty = false
}

const earliest = (times: Array<number | null | undefined>): number | null => {
  let at: number | null = null
  for (const time of times) if (time !== null && time !== undefined && (at === null || time < at)) at = time
  return at
}

/**
 * The machine: folds a batch of events into the state at time `now` and says what to do.
 * Deterministic: no clock, no randomness but the seed in the state, no IO. The state is updated in place.
 */
export const step = (state: MachineState, events: ReadonlyArray<MachineEvent>, now: number): StepOutput => {
  state.out = new Output()
  if (state.released) return state.out
  checkRestored(state, now)
  for (const event of events) handle(state, event, now)
  expireBatches(state, now)
  checkLiveness(state, now)
  releaseDue(state, now)
  checkTimeouts(state, now)
  triggerRuns(state, now)
  checkRuns(state, now)
  dispatch(state, now)
  // Admitting a map call and dispatching its children may drain the queue again: repeat while calls get in (R-MAP-4).
  for (let pending = state.pendingMaps.size; pending > 0; ) {
    admitPendingMaps(state, now)
    // An answered map call is a state change: a run it held open may be over now (R-FIN-1).
    checkRuns(state, now)
    dispatch(state, now)
    if (state.pendingMaps.size === pending) break
    pending = state.pendingMaps.size
  }
  pushProgress(state, now)
  flush(state)
  state.out.released = state.released
  state.out.wakeAt = state.released
    ? null
    : earliest([
        nextBatchExpiry(state),
        nextLivenessCheck(state),
        state.delayed.peek()?.dueAt,
        nextTimeout(state),
        state.outcome === null ? state.nextTriggerAt : null,
        nextToken(state),
        nextRestEnd(state, now),
        state.outcome === null ? state.lastProgressAt + state.config.progressInterval : null
      ])
  return state.out
}
