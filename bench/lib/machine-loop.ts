/**
 * Drives the pure machine (createInstance + step) through a whole mapReduce instance with no IO:
 * 4 workers join by heartbeat, the root is dispatched to the local worker, reports Running and maps
 * every body in one Map event, then every batch the machine sends is acknowledged in the next step by
 * one Reports event per batch saying Succeeded, until the outcome (FINAL included). Time advances by
 * one virtual millisecond per step, so nothing times out and the run is deterministic.
 */
import { resolveConfigSync, TaskKind, TaskStatus, type StatusReport } from "@taskfold/core/adapter"
import { createInstance, step, type MachineEvent, type MachineState } from "@taskfold/core/machine"

export const WORKERS = ["local", "worker-1", "worker-2", "worker-3"] as const
export const SLOTS = 16
export const TASK_NAME = "noop"
const INSTANCE = "bench-machine"

export interface LoopResult {
  readonly ok: boolean
  readonly succeeded: number
  readonly steps: number
  readonly batches: number
}

export const runMachine = (bodies: ReadonlyArray<string>): LoopResult => {
  let now = 0
  let reply = 0
  const heartbeat = (workerId: string): MachineEvent => ({
    _tag: "Heartbeat",
    reply: reply++,
    heartbeat: { instanceId: INSTANCE, workerId, slots: SLOTS, freeSlots: SLOTS, queueLength: 0, idle: false }
  })
  const reports = (workerId: string, list: StatusReport[]): MachineEvent => ({
    _tag: "Reports",
    reply: reply++,
    batch: { instanceId: INSTANCE, workerId, reports: list }
  })
  const state: MachineState = createInstance(
    {
      instanceId: INSTANCE,
      job: "noop",
      kind: "mapReduce",
      config: resolveConfigSync({}),
      params: "null",
      localWorkerId: "local",
      seed: 1
    },
    now
  )
  let out = step(state, WORKERS.map(heartbeat), now)
  let steps = 1
  let batches = 0
  let rootDone: StatusReport | undefined
  while (out.outcome === null) {
    const events: MachineEvent[] = []
    if (rootDone !== undefined) {
      events.push(reports("local", [rootDone]))
      rootDone = undefined
    }
    for (const send of out.sends) {
      batches++
      const acks: StatusReport[] = []
      for (const task of send.batch.tasks) {
        if (task.kind === TaskKind.Root) {
          // The root runs, maps every body in one call, and succeeds in the next step.
          events.push(reports(send.workerId, [{ taskId: task.id, attempt: task.attempt, status: TaskStatus.Running }]))
          events.push({
            _tag: "Map",
            reply: reply++,
            request: {
              instanceId: INSTANCE,
              workerId: send.workerId,
              taskId: task.id,
              attempt: task.attempt,
              name: TASK_NAME,
              bodies
            }
          })
          rootDone = { taskId: task.id, attempt: task.attempt, status: TaskStatus.Succeeded, result: "null" }
        } else {
          const result = task.kind === TaskKind.Final ? String(bodies.length) : "null"
          acks.push({ taskId: task.id, attempt: task.attempt, status: TaskStatus.Succeeded, result })
        }
      }
      if (acks.length > 0) events.push(reports(send.workerId, acks))
    }
    // Keeps the remote workers alive however long the run is in virtual time.
    if (steps % 1_000 === 0) for (const id of WORKERS) events.push(heartbeat(id))
    if (events.length === 0) throw new Error(`the machine stalled after ${steps} steps with no outcome`)
    now++
    out = step(state, events, now)
    steps++
  }
  return { ok: out.outcome.ok, succeeded: state.byName.get(TASK_NAME)?.succeeded ?? 0, steps, batches }
}
