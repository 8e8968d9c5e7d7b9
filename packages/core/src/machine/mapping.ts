import { RejectedError } from "../model/errors.ts"
import type { MapRequest } from "../model/messages.ts"
import { FINAL_NAME, ROOT_NAME, TaskKind } from "../model/status.ts"
import { utf8Length } from "./collections.ts"
import { nextToken } from "./dispatch.ts"
import { runningTask } from "./retry.ts"
import type { MachineState, ReplyValue } from "./state.ts"
import { createBlock } from "./blocks.ts"
import { markDirty } from "./tasks.ts"
import { touchWorker } from "./contact.ts"

/** Encoded size of a body; short strings skip the exact count, they cannot pass the limit. */
const bodyBytes = (body: string | Uint8Array, limit: number): number =>
  typeof body === "string" ? (body.length * 3 <= limit ? body.length : utf8Length(body)) : body.byteLength

/** Checks a map call against R-MAP-3 and R-MAP-5; nothing is stored when it fails. */
const validate = (state: MachineState, request: MapRequest): RejectedError | undefined => {
  if (state.kind !== "map" && state.kind !== "mapReduce") {
    return new RejectedError({
      reason: "map-not-allowed",
      message: `a ${state.kind} job cannot map; only map and mapReduce jobs can`
    })
  }
  if (request.name === ROOT_NAME || request.name === FINAL_NAME) {
    return new RejectedError({
      reason: "reserved-name",
      message: `"${request.name}" is reserved for the ${request.name === ROOT_NAME ? "root" : "final"} task`
    })
  }
  if (request.name.length === 0)
    return new RejectedError({ reason: "bad-input", message: "a map call needs a task name" })
  const limit = state.config.maxTaskBodyBytes
  for (let i = 0; i < request.bodies.length; i++) {
    const size = bodyBytes(request.bodies[i] as string | Uint8Array, limit)
    if (size > limit) {
      return new RejectedError({
        reason: "body-too-large",
        message: `item ${i} is ${size} bytes; maxTaskBodyBytes is ${limit}`
      })
    }
  }
  return undefined
}

/** A call identical to one still waiting (a retry after a lost answer, or a copy): true if it joined that one. */
const joinWaiting = (state: MachineState, request: MapRequest, replies: ReadonlyArray<number>): boolean => {
  if (request.from === undefined) return false
  for (const pending of state.pendingMaps) {
    const waiting = pending.request
    if (
      waiting.taskId === request.taskId &&
      waiting.attempt === request.attempt &&
      waiting.from === request.from &&
      waiting.bodies.length === request.bodies.length
    ) {
      pending.replies.push(...replies)
      return true
    }
  }
  return false
}

/**
 * A running task maps out children, all of one call or none (R-MAP-1). Child number k of the current
 * attempt gets id "<parent>.<k>"; numbers an earlier attempt already created are skipped (R-MAP-2).
 * Above maxWaitingTasks waiting tasks the call waits until the dispatcher drains below half (R-MAP-4).
 * A call is answered once for every copy of it that came in; a replayed call creates nothing, and a call
 * that would leave a gap in the numbering is refused (R-MAP-6).
 */
export const applyMap = (
  state: MachineState,
  request: MapRequest,
  replies: ReadonlyArray<number>,
  now: number,
  admitted = false
): void => {
  touchWorker(state, request.workerId, now)
  const answer = (value: ReplyValue | RejectedError): void => {
    for (const id of replies) state.out.replies.push({ id, value })
  }
  if (state.outcome !== null) {
    return answer(
      new RejectedError({ reason: "instance-finished", message: `instance ${state.instanceId} has finished` })
    )
  }
  const parent = runningTask(state, request.taskId, request.attempt, request.workerId)
  if (parent instanceof RejectedError) return answer(parent)
  // The final task reads every other task's result; children it mapped would never reach reduce (R-FIN-3).
  if (parent.kind === TaskKind.Final) {
    return answer(
      new RejectedError({ reason: "map-not-allowed", message: `the ${FINAL_NAME} task ${parent.id} cannot map` })
    )
  }
  const invalid = validate(state, request)
  if (invalid !== undefined) return answer(invalid)
  if (request.bodies.length === 0) return answer({ _tag: "Mapped", created: 0 })
  // This call's items are numbers cursor + 1 .. cursor + n of the attempt; the ones up to childCount exist
  // already (made by an earlier attempt, or by this very call if it is a replay).
  const cursor = request.from ?? parent.mapCursor
  if (cursor > parent.childCount) {
    return answer(
      new RejectedError({
        reason: "map-gap",
        message:
          `task ${parent.id} has ${parent.childCount} children; a call from item ${cursor} would leave a gap ` +
          "(an earlier call of this attempt did not get through)"
      })
    )
  }
  if (!admitted && (state.waitingCount > state.config.maxWaitingTasks || state.pendingMaps.size > 0)) {
    if (joinWaiting(state, request, replies)) return
    state.pendingMaps.push({ request, replies: [...replies], run: parent.run })
    parent.run.pendingMaps++
    return
  }
  const bodies = request.bodies
  const skipped = Math.min(bodies.length, Math.max(0, parent.childCount - cursor))
  const created = bodies.length - skipped
  parent.mapCursor = Math.max(parent.mapCursor, cursor + bodies.length)
  if (created > 0) {
    parent.childCount = cursor + bodies.length
    createBlock(state, parent, request.name, bodies, skipped, cursor + skipped + 1, created)
  }
  markDirty(state, parent)
  answer({ _tag: "Mapped", created })
}

/**
 * No task in flight can get on and no dispatchRate token is due: on every worker, the tasks placed there are
 * all mappers waiting for their answer, or such mappers fill all its slots (the tasks queued behind them never
 * start). No slot will free up and the waiting tasks would never drain, so back-pressure must give way (R-MAP-4
 * must not deadlock). O(workers + suspended calls), and only while calls are suspended.
 */
const stalled = (state: MachineState): boolean => {
  if (nextToken(state) !== null) return false
  // Every copy of a call holds a slot (a batch delivered twice runs its tasks twice): count the callers, not the calls.
  const mappers = new Map<string, number>()
  for (const pending of state.pendingMaps)
    mappers.set(pending.request.workerId, (mappers.get(pending.request.workerId) ?? 0) + pending.replies.length)
  for (const worker of state.workerList) {
    if (worker.held === 0) continue
    const blocked = mappers.get(worker.id) ?? 0
    if (worker.held > blocked && blocked < Math.max(1, worker.slots)) return false
  }
  return true
}

/** Lets suspended map calls in, in arrival order, once the waiting tasks are below half the bound. */
export const admitPendingMaps = (state: MachineState, now: number): void => {
  const low = state.config.maxWaitingTasks / 2
  while (state.pendingMaps.size > 0 && (state.waitingCount < low || state.outcome !== null || stalled(state))) {
    const pending = state.pendingMaps.shift()
    if (pending === undefined) break
    pending.run.pendingMaps--
    applyMap(state, pending.request, pending.replies, now, true)
  }
}
