/**
 * Model-based test of the machine with fast-check's `fc.commands` + `fc.modelRun`.
 *
 * Model: what the outside world knows — an in-test store that applies every `out.write` (inserts, updates,
 * deleteRuns, deleteInstance) and a simulation of the workers (which task attempts each one holds, what it
 * reported, which map calls wait for an answer). Real: the machine (`MachineState`), driven only by `step`,
 * and rebuilt from the store model with `restoreInstance` on a tracker restart.
 *
 * Commands: worker joins (a worker that crashed comes back as a new incarnation), heartbeats (busy and idle,
 * carrying incarnation, the lowest and highest batch seq taken and a message number), crashes, time advancing (ack
 * timeouts, retry backoff, worker loss), stalls of the tracker's own thread, status reports (in order, skipping,
 * reordered in one batch, replayed duplicates, stale or future attempts, from the wrong worker, for unknown tasks,
 * results over maxResultBytes), map calls (valid, with their position, sent twice as after a lost answer, retried
 * mappers re-mapping, reserved names, over-size bodies, empty lists, stale attempts, a position past the children), the
 * transport's answer to a send (Delivered), failed sends (refused or too large), kills (task and instance), a store
 * write that fails (its write is dropped, then `StoreFailed`), tracker restarts and the owner's ack.
 *
 * Checked after every command (1, 6 and the progress checks are skipped once a write was lost):
 *  1. progress per task name (and per worker) equals the rows of the store model (R-PROG-1);
 *  2. a stored task moves backwards only to Waiting, always with a new attempt (R-STATE);
 *  3. a terminal task in the store never changes again (R-STATE, R-REC-1);
 *  4. the outcome is decided in one step only and never changes, in memory or in the store (R-FIN-6);
 *  5. when FINAL is sent (to the local worker), every other stored task is terminal, once, in seq order 0..n-1,
 *     and the stored count of created tasks matches: reduce sees each task exactly once (R-FIN-3, R-REC-2);
 *  6. the run counters of the written instance row equal the stored rows by status (R-FIN-1, R-FIN-4).
 * Also: every sent task is stored Dispatched(worker, attempt) first (R-DISP-1); every request is answered once;
 * every item of an answered map call is stored, the new ones in that step's write (R-MAP-1, R-MAP-2); reserved
 * names, over-size bodies, stale attempts, the final task and a call past the children cannot map (R-MAP-3,
 * R-MAP-6); a copy of a call creates nothing twice (R-MAP-6); no result is cut: one over maxResultBytes fails its
 * task with result-too-large and is not retried, a map job keeps none (R-RETRY-3); a store failure fails the
 * instance with "storage failure" (R-RETRY-4); the local worker is never judged lost (R-WORK-4); a successful
 * outcome is FINAL's result (mapReduce, never with a failed root, never with a failure unless runReduceIfFail) or
 * the counts (map); every outcome's counts and first errors match the store (R-FIN-8); wakeAt is never in the
 * past; and a same-time Tick after every command finds no work left that only a later step would have done (no
 * stalls behind wakeAt).
 * After the commands the run is drained: all workers come back and work honestly; the instance must finish,
 * and the owner's ack must release it and delete its rows (R-FIN-1, R-FIN-6, R-REC-1).
 *
 * Why no richer "model" object: the outcome of a run depends on the machine's own choices (routing, retries,
 * timeouts), so instead of predicting it the test checks invariants between the machine, its writes and what the
 * workers saw. MODEL_RUNS=n overrides the number of runs; MODEL_STATS=1 prints what the runs reached; MODEL_SEED and
 * MODEL_PATH replay a failure.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { defaultConfig, type JobConfig } from "../model/config.ts"
import type { InstanceRow, NameProgress, Outcome, WorkerProgress } from "../model/instance.ts"
import type { StatusReport, TaskBatch } from "../model/messages.ts"
import { FINAL_NAME, TaskKind, TaskStatus, isTerminal } from "../model/status.ts"
import type { TaskRow } from "../model/task.ts"
import { decodeTaskError } from "../model/task-error.ts"
import { createInstance, restoreInstance } from "./instance.ts"
import type { StoredInstance } from "../model/store.ts"
import { progressSnapshot } from "./progress.ts"
import type { MachineEvent, MachineState, StepOutput } from "./state.ts"
import type { WriteBatch } from "../model/store.ts"
import { step } from "./step.ts"

const INSTANCE = "inst"
const REMOTES = ["w1", "w2", "w3"] as const
const LOCAL_SLOTS = 2
const MAX_BODY = 16
const MAX_RESULT = 24
/** Results of honest work fit maxResultBytes; a "big" result does not (R-RETRY-3). */
const BIG_RESULT = JSON.stringify("x".repeat(MAX_RESULT))

interface Held {
  attempt: number
  name: string
  /** What the worker reported last: 2 (just received the batch), 3, 4. */
  status: number
  /** Items this attempt has mapped and got an answer for. */
  mapped: number
  /** A map call waits for its answer: the task is blocked in `map`. */
  mapping: boolean
}

interface SimWorker {
  readonly id: string
  slots: number
  /** Joined and not crashed. */
  alive: boolean
  readonly held: Map<string, Held>
  /** Runs of the worker's process: a worker that crashed comes back as a new incarnation (R-WORK-2). */
  incarnation: number
  /** Message number of its next heartbeat or report, per incarnation (R-WORK-3). */
  nextMessage: number
  /** Highest batch seq it has taken (R-WORK-3). */
  seen: number
  /** Lowest batch seq this incarnation has taken, -1 for none (R-WORK-2). */
  firstSeen: number
}

interface MapCall {
  readonly workerId: string
  readonly taskId: string
  readonly attempt: number
  readonly from: number
  readonly n: number
  readonly valid: boolean
  /** Copies of one call (a retry after a lost answer) share this: the first answer counts (R-MAP-6). */
  readonly group: { answered: boolean }
}

interface Model {
  now: number
  localId: string
  restarts: number
  readonly kind: "map" | "mapReduce"
  readonly runReduceIfFail: boolean
  readonly remotes: string[]
  readonly workers: Map<string, SimWorker>
  /** The store model. */
  readonly rows: Map<string, TaskRow>
  instance: InstanceRow | null
  /** A write was lost (store failure): the store no longer mirrors the machine. */
  broken: boolean
  failNextWrite: boolean
  released: boolean
  /** The outcome as first decided (R-FIN-6). */
  outcome: Outcome | null
  lastWake: number | null
  readonly log: Array<{ readonly workerId: string; readonly report: StatusReport; readonly n: number }>
  /** Task attempts a result over maxResultBytes was reported for: "<id>@<attempt>" (R-RETRY-3). */
  readonly bigResults: Set<string>
  /** Batches sent by the current tracker incarnation; `taken`: the worker was alive and took it. */
  sends: Array<{
    readonly workerId: string
    readonly seq: number
    readonly tasks: ReadonlyArray<{ id: string; attempt: number }>
    readonly taken: boolean
    answered: boolean
  }>
  readonly maps: Map<number, MapCall>
  readonly answered: Set<number>
  /** Pull requests waiting for their answer, by reply id: the worker that asked. */
  readonly pulls: Map<number, string>
  /** Pull mode: the bound of R-DISP-9; null in push mode. */
  readonly maxInFlight: number | null
  nextReply: number
}

interface Real {
  state: MachineState
}

type Cmd = fc.Command<Model, Real>

/** What the runs reached, to make sure the property is not vacuous. */
const reached: Record<string, number> = {}
const hit = (what: string): void => {
  reached[what] = (reached[what] ?? 0) + 1
}

const fail = (m: Model, message: string): never => {
  const rows = [...m.rows.values()]
    .sort((a, b) => a.seq - b.seq)
    .map((row) => `${row.id}:${row.name}:s${row.status}:a${row.attempt}:${row.worker ?? "-"}`)
    .join(" ")
  throw new Error(`${message}\n  t=${m.now} local=${m.localId} outcome=${JSON.stringify(m.outcome)}\n  store: ${rows}`)
}

// ---------------------------------------------------------------------------------------------------------
// The store model

const applyWrite = (m: Model, write: WriteBatch): void => {
  for (const row of write.inserts) {
    if (m.rows.has(row.id)) fail(m, `task ${row.id} inserted twice (R-MAP-2, R-REC-2)`)
    // Once the outcome is decided no task is created (R-FIN-6, R-FIN-7: no reduce after a kill), also after a restart.
    if (m.outcome !== null && write.instance.outcome !== null && !m.broken)
      fail(m, `task ${row.id} created after the outcome was decided (R-FIN-6)`)
    m.rows.set(row.id, { ...row })
  }
  for (const update of write.updates) {
    const prev = m.rows.get(update.id)
    if (prev === undefined) {
      if (!m.broken) fail(m, `update of task ${update.id} that the store does not hold`)
      continue
    }
    const next: TaskRow = { ...prev, ...update }
    // 3. a terminal task never changes again
    if (isTerminal(prev.status) && JSON.stringify(next) !== JSON.stringify(prev)) {
      fail(m, `terminal task ${prev.id} changed: ${JSON.stringify(prev)} -> ${JSON.stringify(next)} (R-STATE, R-REC-1)`)
    }
    // 2. no move backwards except to Waiting, each with a new attempt; attempts never go down. One write may
    // show Waiting and the next dispatch of the new attempt at once: then the row reads Dispatched. After a
    // lost write the store missed steps, so the new attempt may already be further on (still a new attempt).
    if (next.attempt < prev.attempt) fail(m, `task ${prev.id} attempt went down ${prev.attempt} -> ${next.attempt}`)
    if (
      next.status < prev.status &&
      (next.attempt <= prev.attempt || (!m.broken && next.status > TaskStatus.Dispatched))
    ) {
      fail(
        m,
        `task ${prev.id} moved back ${prev.status} -> ${next.status} ` +
          `with attempt ${prev.attempt} -> ${next.attempt} (R-STATE)`
      )
    }
    // R-RETRY-3: no result is cut; one over maxResultBytes fails its task, never retried; a map job keeps none
    if (next.status === TaskStatus.Succeeded && prev.status !== TaskStatus.Succeeded) {
      const ok = m.kind === "map" ? next.result === null : next.result !== null && next.result.length <= MAX_RESULT
      if (!ok || next.resultCut)
        fail(
          m,
          `task ${next.id} succeeded with result ${JSON.stringify(next.result)} cut ${next.resultCut} (R-RETRY-3)`
        )
    }
    const reason =
      next.lastError === null || next.lastError === prev.lastError ? undefined : decodeTaskError(next.lastError).reason
    if (reason === "result-too-large") {
      if (next.status !== TaskStatus.Failed || next.failures !== prev.failures)
        fail(m, `task ${next.id} was retried after result-too-large (R-RETRY-3)`)
      if (m.kind === "map") fail(m, `a map job checked the size of task ${next.id}'s result (R-RETRY-3)`)
      if (!m.bigResults.has(`${next.id}@${next.attempt}`))
        fail(m, `task ${next.id} failed with result-too-large, no such result was reported (R-RETRY-3)`)
      hit("result too large")
    }
    if (reason === "too-large") hit("task too large for a message")
    if (reason === "undeliverable") hit("undeliverable")
    if (next.attempt > prev.attempt) hit("task back to Waiting")
    if (next.failures > prev.failures) hit("task retried")
    m.rows.set(update.id, next)
  }
  if (write.deleteRuns.length > 0) {
    for (const [id, row] of m.rows) if (write.deleteRuns.includes(row.run)) m.rows.delete(id)
  }
  if (write.deleteInstance) {
    m.rows.clear()
    m.instance = null
    return
  }
  const before = m.instance?.outcome ?? null
  if (before !== null && JSON.stringify(before) !== JSON.stringify(write.instance.outcome)) {
    fail(m, `stored outcome changed: ${JSON.stringify(before)} -> ${JSON.stringify(write.instance.outcome)} (R-FIN-6)`)
  }
  m.instance = write.instance
}

const loadStored = (m: Model): StoredInstance => {
  const live = [...m.rows.values()].filter((row) => !isTerminal(row.status)).sort((a, b) => a.seq - b.seq)
  const terminal = new Map<string, { name: string; worker: string | null; status: number; count: number }>()
  for (const row of m.rows.values()) {
    if (!isTerminal(row.status)) continue
    const key = JSON.stringify([row.name, row.worker, row.status])
    const entry = terminal.get(key)
    if (entry === undefined) terminal.set(key, { name: row.name, worker: row.worker, status: row.status, count: 1 })
    else entry.count++
  }
  if (m.instance === null) return fail(m, "restart without an instance row")
  return { instance: m.instance, live, terminal: [...terminal.values()] }
}

const countByName = (rows: Iterable<TaskRow>): Record<string, NameProgress> => {
  const byName: Record<string, NameProgress> = {}
  for (const row of rows) {
    const counter = (byName[row.name] ??= { total: 0, waiting: 0, dispatched: 0, running: 0, succeeded: 0, failed: 0 })
    counter.total++
    if (row.status === TaskStatus.Waiting) counter.waiting++
    else if (row.status === TaskStatus.Dispatched) counter.dispatched++
    else if (row.status === TaskStatus.Received || row.status === TaskStatus.Running) counter.running++
    else if (row.status === TaskStatus.Succeeded) counter.succeeded++
    else counter.failed++
  }
  return byName
}

// ---------------------------------------------------------------------------------------------------------
// Driving the machine

const workerOrder = (m: Model): SimWorker[] => {
  const list: SimWorker[] = []
  const local = m.workers.get(m.localId)
  if (local !== undefined) list.push(local)
  for (const id of m.remotes) {
    const worker = m.workers.get(id)
    if (worker !== undefined) list.push(worker)
  }
  return list
}

const heartbeat = (m: Model, worker: SimWorker, forgetful = false): MachineEvent => {
  const idle = forgetful || worker.held.size === 0
  if (forgetful) worker.held.clear()
  return {
    _tag: "Heartbeat",
    reply: m.nextReply++,
    heartbeat: {
      instanceId: INSTANCE,
      workerId: worker.id,
      slots: worker.slots,
      freeSlots: Math.max(0, worker.slots - worker.held.size),
      queueLength: Math.max(0, worker.held.size - worker.slots),
      idle,
      incarnation: `${worker.id}#${worker.incarnation}`,
      seen: worker.seen,
      firstSeen: worker.firstSeen,
      n: worker.nextMessage++
    }
  }
}

const simWorker = (id: string, slots: number, alive: boolean): SimWorker => ({
  id,
  slots,
  alive,
  held: new Map(),
  incarnation: 0,
  nextMessage: 0,
  seen: -1,
  firstSeen: -1
})

/** A crashed worker's process starts again: a new incarnation, holding nothing, numbering from 0. */
const reincarnate = (_m: Model, _r: Real, worker: SimWorker): void => {
  worker.alive = true
  worker.held.clear()
  worker.incarnation++
  worker.nextMessage = 0
  worker.seen = -1
  worker.firstSeen = -1
}

/** 5. The final task is sent: reduce will read every other stored task, each exactly once, all terminal. */
const checkFinalDispatch = (m: Model): void => {
  const others = [...m.rows.values()].filter((row) => row.name !== FINAL_NAME)
  const finals = [...m.rows.values()].filter((row) => row.name === FINAL_NAME)
  if (finals.length !== 1) fail(m, `${finals.length} final tasks stored`)
  const results = others.filter((row) => isTerminal(row.status))
  if (results.length !== others.length) {
    fail(
      m,
      `final task dispatched while ${others
        .filter((row) => !isTerminal(row.status))
        .map((row) => row.id)
        .join(",")} not terminal (R-FIN-1, R-REC-2)`
    )
  }
  const ids = new Set(results.map((row) => row.id))
  if (ids.size !== results.length) fail(m, "a task result appears twice")
  const seqs = new Set([...m.rows.values()].map((row) => row.seq))
  if (seqs.size !== m.rows.size || Math.max(...seqs) !== m.rows.size - 1)
    fail(m, "stored seqs are not 0..n-1, reduce's order (R-FIN-3)")
  const created = m.instance?.runs.find((run) => run.run === 0)?.created
  if (created !== m.rows.size) fail(m, `instance row says created ${created}, the store holds ${m.rows.size}`)
}

/** A batch reaches a worker, pushed or pulled: it was stored as Dispatched(worker, attempt) first (R-DISP-1). */
const deliver = (m: Model, workerId: string, batch: TaskBatch): void => {
  for (const task of batch.tasks) {
    if (!m.broken) {
      const row = m.rows.get(task.id)
      if (
        row === undefined ||
        row.status !== TaskStatus.Dispatched ||
        row.attempt !== task.attempt ||
        row.worker !== workerId
      ) {
        fail(
          m,
          `task ${task.id} attempt ${task.attempt} sent to ${workerId} but stored as ${JSON.stringify(row)} (R-DISP-1)`
        )
      }
    }
    if (task.name === FINAL_NAME) {
      if (workerId !== m.localId) fail(m, `final task sent to ${workerId}, not the local worker (R-DISP-4)`)
      if (!m.broken) checkFinalDispatch(m)
      hit("final dispatched")
    }
  }
  const worker = m.workers.get(workerId)
  const taken = worker?.alive === true
  m.sends.push({
    workerId,
    seq: batch.seq,
    tasks: batch.tasks.map((task) => ({ id: task.id, attempt: task.attempt })),
    taken,
    answered: false
  })
  if (worker === undefined || !worker.alive) return
  worker.seen = Math.max(worker.seen, batch.seq)
  if (worker.firstSeen < 0) worker.firstSeen = batch.seq
  for (const task of batch.tasks) {
    worker.held.set(task.id, {
      attempt: task.attempt,
      name: task.name,
      status: TaskStatus.Dispatched,
      mapped: 0,
      mapping: false
    })
  }
}

const observe = (m: Model, out: StepOutput, delivered: boolean): void => {
  // 4. the outcome is decided at most once
  if (out.outcome !== null) {
    hit(`outcome ${out.outcome.ok} ${out.outcome.result.replace(/[0-9]+/g, "n").slice(0, 30)}`)
    if (m.outcome !== null)
      fail(m, `outcome decided twice: ${JSON.stringify(m.outcome)} then ${JSON.stringify(out.outcome)} (R-FIN-6)`)
    m.outcome = out.outcome
  }
  if (out.released) m.released = true
  if (out.wakeAt !== null && out.wakeAt < m.now) fail(m, `wakeAt ${out.wakeAt} is in the past`)
  m.lastWake = out.wakeAt
  if (delivered) for (const send of out.sends) deliver(m, send.workerId, send.batch)
  for (const reply of out.replies) {
    if (m.answered.has(reply.id)) fail(m, `request ${reply.id} answered twice`)
    if (process.env["MODEL_STATS"] !== undefined) {
      const value = reply.value
      if (value._tag === "RejectedError") hit(`rejected ${value.reason}`)
      else if (value._tag === "Reports") {
        if (value.reply.dropped > 0) hit("report dropped")
        if (value.reply.unknown.length > 0) hit("report unknown")
        for (const entry of value.reply.rejected) hit(`report rejected ${entry.error.reason}`)
      }
    }
    m.answered.add(reply.id)
    const puller = m.pulls.get(reply.id)
    if (puller !== undefined) {
      m.pulls.delete(reply.id)
      if (delivered && reply.value._tag === "Pulled" && reply.value.batch !== null) {
        hit("pulled")
        deliver(m, puller, reply.value.batch)
      }
    }
    const call = m.maps.get(reply.id)
    if (call === undefined) continue
    m.maps.delete(reply.id)
    const mapped = "_tag" in reply.value && reply.value._tag === "Mapped" ? reply.value : null
    if (mapped !== null && !call.valid) fail(m, `an invalid map call of ${call.taskId} was accepted (R-MAP-3)`)
    const first = !call.group.answered
    call.group.answered = true
    const held = m.workers.get(call.workerId)?.held.get(call.taskId)
    if (held === undefined || held.attempt !== call.attempt) continue
    held.mapping = false
    if (mapped === null || !delivered) continue
    if (!m.broken) {
      // R-MAP-2: item k of an attempt is child "<parent>.<k>"; every item answered for is stored, the new ones in
      // this very write (R-MAP-1: all of one call), the others by an earlier attempt
      const ids = new Set<string>()
      for (let k = call.from + 1; k <= call.from + call.n; k++) ids.add(`${call.taskId}.${k}`)
      for (const id of ids) {
        if (!m.rows.has(id))
          fail(
            m,
            `map call of ${call.taskId} answered ${JSON.stringify(mapped)} ` +
              `but child ${id} is not stored (R-MAP-1, R-MAP-2)`
          )
      }
      const inserted = (out.write?.inserts ?? []).filter((row) => ids.has(row.id)).length
      if (inserted !== mapped.created)
        fail(
          m,
          `map call of ${call.taskId} answered ${JSON.stringify(mapped)} but ${inserted} of its children were inserted`
        )
    }
    if (!first) {
      hit("map copy answered")
      continue
    }
    held.mapped += call.n
    hit(call.from > 0 ? "map answered (later call)" : "map answered")
  }
}

/** One step at the model's time: the write goes to the store model, the sends to the simulated workers. */
const exec = (m: Model, r: Real, events: MachineEvent[]): StepOutput => {
  const wasReleased = r.state.released
  const out = step(r.state, events, m.now)
  // every request is answered once, in its step; a map call may wait for its answer (R-MAP-4)
  if (!wasReleased) {
    for (const event of events) {
      if (!("reply" in event)) continue
      const answers = out.replies.filter((reply) => reply.id === event.reply).length
      if (answers > 1 || (answers === 0 && event._tag !== "Map"))
        fail(m, `${event._tag} request ${event.reply} got ${answers} answers`)
    }
  }
  if (m.failNextWrite && out.write !== null) {
    // R-RETRY-4: the write failed past its retries; its sends never leave; the tracker feeds StoreFailed
    m.failNextWrite = false
    m.broken = true
    hit("store write failed")
    observe(m, out, false)
    const decided = r.state.outcome !== null
    const failed = step(r.state, [{ _tag: "StoreFailed", cause: "disk full" }], m.now)
    if (failed.write !== null) applyWrite(m, failed.write)
    observe(m, failed, true)
    if (
      !decided &&
      (r.state.outcome === null || r.state.outcome.ok || !r.state.outcome.result.startsWith("storage failure"))
    ) {
      fail(m, `a store failure gave the outcome ${JSON.stringify(r.state.outcome)} (R-RETRY-4)`)
    }
    return failed
  }
  if (out.write !== null) applyWrite(m, out.write)
  observe(m, out, true)
  return out
}

const checkInvariants = (m: Model, r: Real): void => {
  if (m.released) return
  if (JSON.stringify(r.state.outcome) !== JSON.stringify(m.outcome)) {
    fail(
      m,
      `the machine's outcome ${JSON.stringify(r.state.outcome)} ` +
        `differs from the one decided ${JSON.stringify(m.outcome)}`
    )
  }
  const outcome = m.outcome
  if (outcome !== null) {
    if (outcome.result.startsWith("worker lost: ")) fail(m, "the local worker was judged lost (R-WORK-4)")
    if (outcome.result.startsWith("counts do not add up")) fail(m, `counts did not add up (R-FIN-4)`)
    if (outcome.result.startsWith("the store does not hold"))
      fail(m, `a resumed tracker found the store and its counters apart (R-FIN-4)`)
  }
  if (m.broken) return
  const instance = m.instance
  if (instance === null) return fail(m, "no instance row stored")
  // 1. progress counters equal what the store holds (R-PROG-1)
  const stored = countByName(m.rows.values())
  const snapshot = progressSnapshot(r.state, m.now)
  expect(snapshot.byName, "progress counters vs the store").toEqual(stored)
  const byWorker: Record<string, { assigned: number; running: number; succeeded: number; failed: number }> = {}
  for (const row of m.rows.values()) {
    if (row.worker === null) continue
    const counter = (byWorker[row.worker] ??= { assigned: 0, running: 0, succeeded: 0, failed: 0 })
    if (!isTerminal(row.status)) counter.assigned++
    if (row.status === TaskStatus.Received || row.status === TaskStatus.Running) counter.running++
    if (row.status === TaskStatus.Succeeded) counter.succeeded++
    if (row.status === TaskStatus.Failed) counter.failed++
  }
  for (const id of new Set([...Object.keys(byWorker), ...Object.keys(snapshot.byWorker)])) {
    const none: WorkerProgress = { assigned: 0, running: 0, succeeded: 0, failed: 0 }
    const { unhealthy: _, ...counters } = snapshot.byWorker[id] ?? none
    const shown = JSON.stringify(counters)
    const counted = JSON.stringify(byWorker[id] ?? none)
    if (shown !== counted) fail(m, `progress of worker ${id} ${shown}, store says ${counted} (R-PROG-1)`)
  }
  // 6. the run counters of the instance row add up to the stored rows (R-FIN-1, R-FIN-4)
  for (const run of instance.runs) {
    const rows = [...m.rows.values()].filter((row) => row.run === run.run)
    const succeeded = rows.filter((row) => row.status === TaskStatus.Succeeded).length
    const failed = rows.filter((row) => row.status === TaskStatus.Failed).length
    if (run.created !== rows.length || run.succeeded !== succeeded || run.failed !== failed) {
      fail(
        m,
        `run counters ${JSON.stringify(run)} vs stored rows: ` +
          `${rows.length} created, ${succeeded} succeeded, ${failed} failed`
      )
    }
  }
  if (JSON.stringify(instance.outcome) !== JSON.stringify(m.outcome))
    fail(m, "stored outcome differs from the decided one")
  if (m.maxInFlight !== null) {
    const inFlight = [...m.rows.values()].filter(
      (row) => row.kind === TaskKind.Sub && row.status >= TaskStatus.Dispatched && row.status <= TaskStatus.Running
    ).length
    if (inFlight > m.maxInFlight) fail(m, `${inFlight} sub-tasks in flight, maxInFlight is ${m.maxInFlight} (R-DISP-9)`)
  }
  if (outcome !== null) {
    const rows = [...m.rows.values()]
    const failedRows = rows.filter((row) => row.status === TaskStatus.Failed)
    const succeeded = rows.filter((row) => row.status === TaskStatus.Succeeded).length
    const failed = failedRows.length
    // R-FIN-8: the counts are the store's, and the first errors name failed tasks as stored, at most maxReportedErrors
    const counts = { created: rows.length, succeeded, failed }
    if (JSON.stringify(outcome.counts) !== JSON.stringify(counts))
      fail(m, `outcome counts ${JSON.stringify(outcome.counts)}, store says ${JSON.stringify(counts)} (R-FIN-8)`)
    if (outcome.errors.length !== Math.min(failed, defaultConfig.maxReportedErrors)) {
      fail(m, `outcome names ${outcome.errors.length} errors of ${failed} failed tasks (R-FIN-8)`)
    }
    if (new Set(outcome.errors.map((entry) => entry.taskId)).size !== outcome.errors.length)
      fail(m, "outcome names a failed task twice (R-FIN-8)")
    for (const entry of outcome.errors) {
      const row = m.rows.get(entry.taskId)
      const stored = row?.lastError === null || row === undefined ? undefined : decodeTaskError(row.lastError)
      if (
        row?.status !== TaskStatus.Failed ||
        row.name !== entry.name ||
        row.attempt !== entry.attempt ||
        JSON.stringify(stored) !== JSON.stringify(entry.error)
      ) {
        fail(m, `outcome names ${JSON.stringify(entry)} but the store holds ${JSON.stringify(row)} (R-FIN-8)`)
      }
    }
    if (outcome.ok) {
      // R-FIN-8: an ok outcome is true of the work: the root succeeded, also when it failed before a restart
      if (rows.find((row) => row.id === "0")?.status !== TaskStatus.Succeeded) {
        fail(m, "an ok outcome with a root that did not succeed (R-FIN-8)")
      }
      if (failed > 0 && !(m.kind === "mapReduce" && m.runReduceIfFail))
        fail(m, `an ok outcome with ${failed} failed tasks (R-FIN-2, R-FIN-3)`)
    }
    // a successful outcome is the final task's result (mapReduce) or the counts with no failure (map)
    if (m.kind === "map" && (outcome.ok || outcome.result.startsWith("total: "))) {
      const expected = `total: ${rows.length}, succeeded: ${succeeded}, failed: ${failed}`
      const named =
        failed === 0
          ? outcome.result === expected
          : outcome.result.startsWith(
              `${expected}; ${failed} of ${rows.length} tasks failed, so the map failed; first errors: `
            )
      if (!named || outcome.ok !== (failed === 0))
        fail(m, `map outcome ${outcome.result}, store says ${expected} (R-FIN-2)`)
    } else if (m.kind === "mapReduce" && outcome.ok) {
      const final = rows.find((row) => row.name === FINAL_NAME)
      if (final?.status !== TaskStatus.Succeeded || final.result !== outcome.result) {
        fail(m, `mapReduce succeeded with ${outcome.result} but the final task is ${JSON.stringify(final)} (R-FIN-3)`)
      }
    }
  }
}

/** Every command ends here: a Tick at the same time must find nothing left to do unless wakeAt asked for it. */
const settle = (m: Model, r: Real): void => {
  hit("command")
  if (!m.released) {
    const wake = m.lastWake
    const out = exec(m, r, [{ _tag: "Tick" }])
    const busy = out.write !== null || out.sends.length > 0 || out.outcome !== null
    if (busy && (wake === null || wake > m.now)) {
      fail(
        m,
        `a Tick at the same time still had work (write ${out.write !== null}, ${out.sends.length} sends) ` +
          `although wakeAt was ${wake}`
      )
    }
  }
  checkInvariants(m, r)
}

const live = (m: Readonly<Model>) => !m.released

// ---------------------------------------------------------------------------------------------------------
// Commands

class JoinCmd implements Cmd {
  readonly index: number
  readonly slots: number
  constructor(index: number, slots: number) {
    this.index = index
    this.slots = slots
  }
  check = live
  run(m: Model, r: Real): void {
    const worker = m.workers.get(m.remotes[this.index % m.remotes.length] as string)
    if (worker !== undefined) {
      if (!worker.alive) reincarnate(m, r, worker)
      worker.slots = this.slots
      exec(m, r, [heartbeat(m, worker)])
    }
    settle(m, r)
  }
  toString = () => `join(${this.index},slots=${this.slots})`
}

class HeartbeatCmd implements Cmd {
  readonly pick: number
  readonly forgetful: boolean
  constructor(pick: number, forgetful: boolean) {
    this.pick = pick
    this.forgetful = forgetful
  }
  check = live
  run(m: Model, r: Real): void {
    const alive = workerOrder(m).filter((worker) => worker.alive)
    const worker = alive[this.pick % Math.max(1, alive.length)]
    if (worker !== undefined) {
      // The transport answers a send right when the worker takes it, so the answers of the batches it forgot
      // now came before (not modelled): none of them may arrive later.
      if (this.forgetful) for (const send of m.sends) if (send.workerId === worker.id) send.answered = true
      exec(m, r, [heartbeat(m, worker, this.forgetful)])
    }
    settle(m, r)
  }
  toString = () => `heartbeat(${this.pick}${this.forgetful ? ",idle-forgot" : ""})`
}

class CrashCmd implements Cmd {
  readonly index: number
  constructor(index: number) {
    this.index = index
  }
  check = live
  run(m: Model, r: Real): void {
    const worker = m.workers.get(m.remotes[this.index % m.remotes.length] as string)
    if (worker !== undefined) {
      worker.alive = false
      worker.held.clear()
    }
    settle(m, r)
  }
  toString = () => `crash(${this.index})`
}

class AdvanceCmd implements Cmd {
  readonly ms: number
  readonly beat: boolean
  constructor(ms: number, beat: boolean) {
    this.ms = ms
    this.beat = beat
  }
  check = live
  run(m: Model, r: Real): void {
    m.now += this.ms
    const beats = this.beat
      ? workerOrder(m)
          .filter((worker) => worker.alive)
          .map((worker) => heartbeat(m, worker))
      : []
    exec(m, r, [...beats, { _tag: "Tick" }])
    settle(m, r)
  }
  toString = () => `advance(${this.ms}${this.beat ? ",beat" : ""})`
}

/** The tracker's own thread was busy for `ms` (R-DISP-10): time passes, nothing reaches it, the step is told so. */
class StallCmd implements Cmd {
  readonly ms: number
  constructor(ms: number) {
    this.ms = ms
  }
  check = live
  run(m: Model, r: Real): void {
    m.now += this.ms
    hit("stall")
    exec(m, r, [{ _tag: "Stalled", ms: this.ms }, { _tag: "Tick" }])
    settle(m, r)
  }
  toString = () => `stall(${this.ms})`
}

type ReportKind = "received" | "running" | "succeed" | "succeed-big" | "fail" | "reorder-done" | "reorder-start"

/** Tasks the alive workers hold; a task blocked in `map` still has its progress reported, but cannot end or map. */
const heldTasks = (m: Model, blocked = false): Array<{ worker: SimWorker; id: string; held: Held }> => {
  const list: Array<{ worker: SimWorker; id: string; held: Held }> = []
  for (const worker of workerOrder(m)) {
    if (!worker.alive) continue
    for (const [id, held] of worker.held) if (blocked || !held.mapping) list.push({ worker, id, held })
  }
  return list
}

const report = (id: string, attempt: number, status: 3 | 4 | 5 | 6, big = false): StatusReport =>
  status === TaskStatus.Succeeded
    ? { taskId: id, attempt, status, result: big ? BIG_RESULT : JSON.stringify(`r${id}`.slice(0, 16)) }
    : status === TaskStatus.Failed
      ? {
          taskId: id,
          attempt,
          status,
          error:
            attempt % 2 === 0
              ? `boom ${id}`
              : { tag: "BoomError", message: `boom ${id}`, cause: { tag: "string", message: "deeper" } }
        }
      : { taskId: id, attempt, status }

/** Reports from a worker, numbered as its next message; `n` given: a copy of an earlier message (a replay). */
const sendReports = (m: Model, r: Real, workerId: string, reports: StatusReport[], n?: number): StepOutput => {
  const worker = m.workers.get(workerId)
  const number = n ?? (worker === undefined ? undefined : worker.nextMessage++)
  for (const entry of reports) {
    m.log.push({ workerId, report: entry, n: number ?? -1 })
    if (entry.result === BIG_RESULT) m.bigResults.add(`${entry.taskId}@${entry.attempt}`)
  }
  const batch = {
    instanceId: INSTANCE,
    workerId,
    reports,
    ...(number === undefined || number < 0 ? {} : { n: number })
  }
  return exec(m, r, [{ _tag: "Reports", reply: m.nextReply++, batch }])
}

class ReportCmd implements Cmd {
  readonly pick: number
  readonly kind: ReportKind
  readonly skew: number
  constructor(pick: number, kind: ReportKind, skew: number) {
    this.pick = pick
    this.kind = kind
    this.skew = skew
  }
  check = live
  run(m: Model, r: Real): void {
    const tasks = heldTasks(m, this.kind === "received" || this.kind === "running" || this.kind === "reorder-start")
    const chosen = tasks[this.pick % Math.max(1, tasks.length)]
    if (chosen !== undefined) {
      const { worker, id, held } = chosen
      const attempt = Math.max(0, held.attempt + this.skew)
      const reports: StatusReport[] =
        this.kind === "received"
          ? [report(id, attempt, 3)]
          : this.kind === "running"
            ? [report(id, attempt, 4)]
            : this.kind === "succeed" || this.kind === "succeed-big"
              ? [report(id, attempt, 6, this.kind === "succeed-big")]
              : this.kind === "fail"
                ? [report(id, attempt, 5)]
                : this.kind === "reorder-done"
                  ? [report(id, attempt, 6), report(id, attempt, 4)]
                  : [report(id, attempt, 4), report(id, attempt, 3)]
      if (attempt === held.attempt) {
        const top = Math.max(...reports.map((entry) => entry.status))
        if (isTerminal(top)) worker.held.delete(id)
        else held.status = Math.max(held.status, top)
      }
      sendReports(m, r, worker.id, reports)
    }
    settle(m, r)
  }
  toString = () =>
    `report(${this.pick},${this.kind}${this.skew === 0 ? "" : `,attempt${this.skew > 0 ? "+" : ""}${this.skew}`})`
}

class ReplayCmd implements Cmd {
  readonly pick: number
  readonly other: number
  constructor(pick: number, other: number) {
    this.pick = pick
    this.other = other
  }
  check = live
  run(m: Model, r: Real): void {
    const entry = m.log[m.log.length - 1 - (this.pick % Math.max(1, m.log.length))]
    if (entry !== undefined) {
      const ids = [m.localId, ...m.remotes]
      const workerId =
        this.other === 0 ? entry.workerId : (ids[(ids.indexOf(entry.workerId) + this.other) % ids.length] as string)
      // a network copy carries the message number it had; from another worker it carries none
      sendReports(m, r, workerId, [entry.report], this.other === 0 ? entry.n : -1)
    }
    settle(m, r)
  }
  toString = () => `replay(${this.pick}${this.other === 0 ? "" : `,from+${this.other}`})`
}

class UnknownReportCmd implements Cmd {
  readonly ghost: boolean
  constructor(ghost: boolean) {
    this.ghost = ghost
  }
  check = live
  run(m: Model, r: Real): void {
    const out = sendReports(m, r, this.ghost ? "ghost" : m.localId, [report("0.99", 0, 4), report("nope", 0, 6)])
    const value = out.replies[0]?.value
    if (value === undefined || !("_tag" in value) || value._tag !== "Reports" || value.reply.applied !== 0) {
      fail(m, `reports for unknown tasks answered ${JSON.stringify(value)} (R-STATE-4)`)
    }
    settle(m, r)
  }
  toString = () => `unknownReport(${this.ghost ? "ghost" : "local"})`
}

type MapVariant = "A" | "B" | "twice" | "gap" | "ROOT" | "FINAL" | "big-text" | "big-bytes" | "empty"

class MapCmd implements Cmd {
  readonly pick: number
  readonly n: number
  readonly variant: MapVariant
  readonly skew: number
  constructor(pick: number, n: number, variant: MapVariant, skew: number) {
    this.pick = pick
    this.n = n
    this.variant = variant
    this.skew = skew
  }
  check = live
  run(m: Model, r: Real): void {
    const tasks = heldTasks(m)
    const chosen = tasks[this.pick % Math.max(1, tasks.length)]
    if (chosen !== undefined) {
      const { worker, id, held } = chosen
      const n = this.variant === "empty" ? 0 : this.n
      const bodies: Array<string | Uint8Array<ArrayBuffer>> = []
      for (let k = 0; k < n; k++) bodies.push(JSON.stringify(`b${k}`))
      if (this.variant === "big-text") bodies.push("x".repeat(MAX_BODY + 1))
      if (this.variant === "big-bytes") bodies.push(new Uint8Array(MAX_BODY + 1))
      const name = this.variant === "B" ? "B" : this.variant === "ROOT" || this.variant === "FINAL" ? this.variant : "A"
      const attempt = Math.max(0, held.attempt + this.skew)
      // reduce (the final task) may not map: its children would never reach it (R-FIN-3); nor may a call from
      // past the children it has, which would leave a gap (R-MAP-6)
      const plain = this.variant === "A" || this.variant === "B" || this.variant === "twice" || this.variant === "empty"
      const valid = plain && attempt === held.attempt && held.name !== FINAL_NAME
      // the worker names the call's position among the attempt's items, as the runtime does (R-MAP-6)
      const from = this.variant === "gap" ? held.mapped + 50 : held.mapped
      const blocks = valid && n > 0
      const group = { answered: false }
      const call = (): number => {
        const reply = m.nextReply++
        m.maps.set(reply, {
          workerId: worker.id,
          taskId: id,
          attempt: blocks ? held.attempt : -1,
          from,
          n,
          valid,
          group
        })
        return reply
      }
      const event = (reply: number): MachineEvent => ({
        _tag: "Map",
        reply,
        request: { instanceId: INSTANCE, workerId: worker.id, taskId: id, attempt, name, bodies, from }
      })
      const reply = call()
      if (blocks) held.mapping = true
      const out = exec(m, r, [event(reply)])
      const answer = out.replies.find((entry) => entry.id === reply)?.value
      if (answer === undefined) hit("map suspended")
      if (
        n === 0 &&
        valid &&
        answer !== undefined &&
        "_tag" in answer &&
        answer._tag === "Mapped" &&
        answer.created !== 0
      ) {
        fail(m, "an empty map call created tasks (R-MAP-3)")
      }
      if (
        this.variant === "gap" &&
        answer !== undefined &&
        answer._tag === "RejectedError" &&
        answer.reason === "map-gap"
      )
        hit("map gap refused")
      if (this.variant === "twice" && blocks) {
        // the answer was lost on the way (or is still to come): the worker sends the very same call again
        if (answer !== undefined) held.mapping = true
        exec(m, r, [event(call())])
        hit(answer === undefined ? "map copy of a suspended call" : "map copy of an answered call")
      }
    }
    settle(m, r)
  }
  toString = () =>
    `map(${this.pick},${this.variant}x${this.n}` +
    (this.skew === 0 ? "" : `,attempt${this.skew > 0 ? "+" : ""}${this.skew}`) +
    ")"
}

class PullCmd implements Cmd {
  readonly pick: number
  readonly pageSize: number
  constructor(pick: number, pageSize: number) {
    this.pick = pick
    this.pageSize = pageSize
  }
  check = live
  run(m: Model, r: Real): void {
    const alive = workerOrder(m).filter((worker) => worker.alive)
    const worker = alive[this.pick % Math.max(1, alive.length)]
    if (worker !== undefined) {
      const reply = m.nextReply++
      m.pulls.set(reply, worker.id)
      exec(m, r, [
        { _tag: "Pull", reply, request: { instanceId: INSTANCE, workerId: worker.id, pageSize: this.pageSize } }
      ])
    }
    settle(m, r)
  }
  toString = () => `pull(${this.pick},${this.pageSize})`
}

class SendFailCmd implements Cmd {
  readonly pick: number
  readonly tooLarge: boolean
  constructor(pick: number, tooLarge: boolean) {
    this.pick = pick
    this.tooLarge = tooLarge
  }
  check = live
  run(m: Model, r: Real): void {
    const send = m.sends[m.sends.length - 1 - (this.pick % Math.max(1, m.sends.length))]
    if (send !== undefined) {
      const worker = m.workers.get(send.workerId)
      // the batch never arrived: the worker forgets the tasks it has not acknowledged yet
      for (const task of send.tasks) {
        const held = worker?.held.get(task.id)
        if (held !== undefined && held.attempt === task.attempt && held.status === TaskStatus.Dispatched)
          worker?.held.delete(task.id)
      }
      send.answered = true
      exec(m, r, [
        {
          _tag: "SendFailed",
          workerId: send.workerId,
          seq: send.seq,
          tooLarge: this.tooLarge,
          error: this.tooLarge ? "413" : "refused"
        }
      ])
    }
    settle(m, r)
  }
  toString = () => `sendFailed(${this.pick}${this.tooLarge ? ",too-large" : ""})`
}

/** The transport answers a send the worker took: its receipt (R-DISP-10); the tasks it still holds are Received. */
class DeliveredCmd implements Cmd {
  readonly pick: number
  constructor(pick: number) {
    this.pick = pick
  }
  check = live
  run(m: Model, r: Real): void {
    const open = m.sends.filter((send) => send.taken && !send.answered)
    const send = open[open.length - 1 - (this.pick % Math.max(1, open.length))]
    if (send !== undefined) {
      send.answered = true
      const worker = m.workers.get(send.workerId)
      for (const task of send.tasks) {
        const held = worker?.held.get(task.id)
        if (held !== undefined && held.attempt === task.attempt)
          held.status = Math.max(held.status, TaskStatus.Received)
      }
      hit("delivered")
      exec(m, r, [{ _tag: "Delivered", workerId: send.workerId, seq: send.seq }])
    }
    settle(m, r)
  }
  toString = () => `delivered(${this.pick})`
}

class KillCmd implements Cmd {
  readonly pick: number
  readonly target: "task" | "unknown" | "instance"
  constructor(pick: number, target: "task" | "unknown" | "instance") {
    this.pick = pick
    this.target = target
  }
  check = live
  run(m: Model, r: Real): void {
    if (this.target === "instance") {
      exec(m, r, [{ _tag: "Kill", taskId: null, reason: "killed by test", reply: m.nextReply++ }])
    } else {
      const liveRows = [...m.rows.values()].filter((row) => !isTerminal(row.status)).sort((a, b) => a.seq - b.seq)
      const row = liveRows[this.pick % Math.max(1, liveRows.length)]
      const taskId = this.target === "unknown" ? "9.9" : row?.id
      if (taskId !== undefined) exec(m, r, [{ _tag: "Kill", taskId, reason: "killed by test", reply: m.nextReply++ }])
    }
    settle(m, r)
  }
  toString = () => `kill(${this.target === "task" ? this.pick : this.target})`
}

class StoreFailCmd implements Cmd {
  check = (m: Readonly<Model>) => !m.released && !m.broken
  run(m: Model, r: Real): void {
    m.failNextWrite = true
    settle(m, r)
  }
  toString = () => "storeFailsNextWrite"
}

class RestartCmd implements Cmd {
  readonly sameLocal: boolean
  constructor(sameLocal: boolean) {
    this.sameLocal = sameLocal
  }
  check = (m: Readonly<Model>) => !m.released && !m.broken && !m.failNextWrite
  run(m: Model, r: Real): void {
    const stored = loadStored(m)
    hit("restart")
    const remote = stored.live.filter(
      (row) => row.worker !== null && row.worker !== m.localId && row.status >= TaskStatus.Dispatched
    )
    if (remote.length > 0) hit("restart with remote tasks in flight")
    if (remote.some((row) => row.childCount > 0))
      hit(
        "restart with a remote mapper in flight, attempt " +
          (remote.some((row) => row.childCount > 0 && row.attempt > 0) ? "> 0" : "0")
      )
    // the old process died with its local worker and with every map call waiting for an answer
    const lastIncarnation = m.workers.get(m.localId)?.incarnation ?? 0
    m.workers.delete(m.localId)
    for (const call of m.maps.values()) {
      const held = m.workers.get(call.workerId)?.held.get(call.taskId)
      if (held !== undefined && held.attempt === call.attempt) held.mapping = false
    }
    m.maps.clear()
    m.sends = []
    m.restarts++
    if (!this.sameLocal) m.localId = `local${m.restarts}`
    const local = simWorker(m.localId, LOCAL_SLOTS, true)
    // the local worker's process is new too
    local.incarnation = lastIncarnation + 1
    m.workers.set(local.id, local)
    r.state = restoreInstance(stored, m.localId, m.now)
    m.lastWake = null
    exec(m, r, [heartbeat(m, local)])
    settle(m, r)
  }
  toString = () => `restart(${this.sameLocal ? "same local id" : "new local id"})`
}

class AckCmd implements Cmd {
  check = (m: Readonly<Model>) => !m.released && m.outcome !== null
  run(m: Model, r: Real): void {
    exec(m, r, [{ _tag: "OutcomeAcked" }])
    if (!m.released) fail(m, "the acknowledged instance was not released (R-FIN-6)")
    if (!m.broken && (m.instance !== null || m.rows.size > 0))
      fail(m, "the released instance left rows in the store (R-FIN-6)")
    settle(m, r)
  }
  toString = () => "outcomeAcked"
}

const advanceArb = fc
  .tuple(fc.constantFrom(0, 50, 300, 1_000, 1_600, 4_000), fc.boolean())
  .map(([ms, beat]) => new AdvanceCmd(ms, beat))

/** One weighted choice, so rare commands (store failure, instance kill) do not end most runs early. */
const commandArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.tuple(fc.nat(2), fc.integer({ min: 1, max: 3 })).map(([index, slots]) => new JoinCmd(index, slots))
  },
  {
    weight: 6,
    arbitrary: fc.tuple(fc.nat(3), fc.nat(3)).map(([pick, forget]) => new HeartbeatCmd(pick, forget === 0))
  },
  { weight: 2, arbitrary: fc.nat(2).map((index) => new CrashCmd(index)) },
  { weight: 10, arbitrary: advanceArb },
  { weight: 2, arbitrary: fc.constantFrom(300, 1_200, 5_000).map((ms) => new StallCmd(ms)) },
  {
    weight: 24,
    arbitrary: fc
      .tuple(
        fc.nat(7),
        fc.constantFrom<ReportKind>(
          "received",
          "running",
          "succeed",
          "succeed",
          "succeed",
          "succeed-big",
          "fail",
          "reorder-done",
          "reorder-start"
        ),
        fc.constantFrom(0, 0, 0, 0, 0, 0, -1, 1)
      )
      .map(([pick, kind, skew]) => new ReportCmd(pick, kind, skew))
  },
  {
    weight: 4,
    arbitrary: fc.tuple(fc.nat(7), fc.constantFrom(0, 0, 1, 2)).map(([pick, other]) => new ReplayCmd(pick, other))
  },
  { weight: 2, arbitrary: fc.boolean().map((ghost) => new UnknownReportCmd(ghost)) },
  {
    weight: 16,
    arbitrary: fc
      .tuple(
        fc.nat(7),
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom<MapVariant>(
          "A",
          "A",
          "A",
          "B",
          "B",
          "twice",
          "twice",
          "gap",
          "ROOT",
          "FINAL",
          "big-text",
          "big-bytes",
          "empty"
        ),
        fc.constantFrom(0, 0, 0, 0, 0, -1, 1)
      )
      .map(([pick, n, variant, skew]) => new MapCmd(pick, n, variant, skew))
  },
  { weight: 2, arbitrary: fc.tuple(fc.nat(3), fc.nat(3)).map(([pick, large]) => new SendFailCmd(pick, large === 0)) },
  { weight: 5, arbitrary: fc.nat(3).map((pick) => new DeliveredCmd(pick)) },
  {
    weight: 6,
    arbitrary: fc.tuple(fc.nat(3), fc.integer({ min: 1, max: 3 })).map(([pick, size]) => new PullCmd(pick, size))
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.nat(7), fc.constantFrom<"task" | "unknown" | "instance">("task", "task", "task", "unknown", "instance"))
      .map(([pick, target]) => new KillCmd(pick, target))
  },
  { weight: 1, arbitrary: fc.constant(new StoreFailCmd()) },
  { weight: 5, arbitrary: fc.boolean().map((same) => new RestartCmd(same)) },
  { weight: 2, arbitrary: fc.constant(new AckCmd()) }
)

// ---------------------------------------------------------------------------------------------------------
// Jobs

const jobArb = fc.record({
  kind: fc.constantFrom<"map" | "mapReduce">("mapReduce", "mapReduce", "map"),
  remotes: fc.integer({ min: 1, max: 3 }),
  joined: fc.integer({ min: 0, max: 3 }),
  maxWaitingTasks: fc.integer({ min: 1, max: 3 }),
  taskRetries: fc.integer({ min: 1, max: 2 }),
  backoff: fc.constantFrom(0, 200, 1_000),
  queueAllowance: fc.integer({ min: 0, max: 1 }),
  dispatchBatchSize: fc.integer({ min: 1, max: 3 }),
  routing: fc.constantFrom<JobConfig["routing"]>("round-robin", "least-loaded"),
  localWorker: fc.constantFrom<JobConfig["localWorker"]>("include", "exclude"),
  failover: fc.boolean(),
  runReduceIfFail: fc.boolean(),
  maxRedeliveries: fc.integer({ min: 0, max: 2 }),
  instanceTimeout: fc.constantFrom<number | null>(null, null, 20_000),
  dispatchRate: fc.constantFrom<string | null>(null, null, null, "2/s", "5"),
  pull: fc.constantFrom(false, false, false, true),
  maxInFlight: fc.integer({ min: 1, max: 3 }),
  seed: fc.integer()
})
type Job = typeof jobArb extends fc.Arbitrary<infer T> ? T : never

/** The run fast-check last set up, to drain it after its commands. */
const started: Array<{ model: Model; real: Real }> = []

const setup = (job: Job) => (): { model: Model; real: Real } => {
  const config: JobConfig = {
    ...defaultConfig,
    dispatchBatchSize: job.dispatchBatchSize,
    ackTimeout: 1_000,
    maxRedeliveries: job.maxRedeliveries,
    taskRetries: job.taskRetries,
    retryBackoff: { kind: "fixed", ms: job.backoff },
    maxTaskBodyBytes: MAX_BODY,
    maxResultBytes: MAX_RESULT,
    maxWaitingTasks: job.maxWaitingTasks,
    progressInterval: 1_000,
    instanceTimeout: job.instanceTimeout,
    heartbeatInterval: 500,
    workerTimeout: 1_500,
    queueAllowance: job.queueAllowance,
    routing: job.routing,
    localWorker: job.localWorker,
    failover: job.failover,
    runReduceIfFail: job.runReduceIfFail,
    dispatchRate: job.dispatchRate,
    dispatchMode: job.pull ? "pull" : "push",
    maxInFlight: job.maxInFlight
  }
  const remotes = REMOTES.slice(0, job.remotes)
  const model: Model = {
    now: 0,
    localId: "local",
    restarts: 0,
    kind: job.kind,
    runReduceIfFail: job.runReduceIfFail,
    remotes,
    workers: new Map(),
    rows: new Map(),
    instance: null,
    broken: false,
    failNextWrite: false,
    released: false,
    outcome: null,
    lastWake: null,
    log: [],
    bigResults: new Set(),
    sends: [],
    maps: new Map(),
    answered: new Set(),
    pulls: new Map(),
    maxInFlight: job.pull ? job.maxInFlight : null,
    nextReply: 1
  }
  model.workers.set("local", simWorker("local", LOCAL_SLOTS, true))
  for (const id of remotes) model.workers.set(id, simWorker(id, 2, false))
  const real: Real = {
    state: createInstance(
      {
        instanceId: INSTANCE,
        job: "job",
        kind: job.kind,
        config,
        params: "{}",
        localWorkerId: "local",
        seed: job.seed
      },
      0
    )
  }
  const beats = [heartbeat(model, model.workers.get("local") as SimWorker)]
  for (const id of remotes.slice(0, job.joined)) {
    const worker = model.workers.get(id) as SimWorker
    worker.alive = true
    beats.push(heartbeat(model, worker))
  }
  hit("run")
  exec(model, real, beats)
  settle(model, real)
  started[0] = { model, real }
  return { model, real }
}

/**
 * After the commands, every worker comes back and does its work honestly: the instance must finish
 * (no task lost, no map call left waiting, no stall), and the owner's ack releases it with an empty store.
 */
const drain = (m: Model, r: Real): void => {
  if (m.broken) return
  m.failNextWrite = false
  for (let round = 0; round < 40 && m.outcome === null; round++) {
    for (const id of m.remotes) {
      const worker = m.workers.get(id)
      if (worker !== undefined && !worker.alive) reincarnate(m, r, worker)
    }
    for (const worker of workerOrder(m)) {
      const reports: StatusReport[] = []
      for (const [id, held] of worker.held) {
        if (held.mapping) {
          if (held.status < TaskStatus.Running) reports.push(report(id, held.attempt, TaskStatus.Running))
          held.status = TaskStatus.Running
          continue
        }
        reports.push(report(id, held.attempt, TaskStatus.Succeeded))
        worker.held.delete(id)
      }
      if (reports.length > 0) sendReports(m, r, worker.id, reports)
    }
    m.now += round % 2 === 0 ? 0 : 600
    const pulls: MachineEvent[] = []
    if (m.maxInFlight !== null) {
      for (const worker of workerOrder(m)) {
        const reply = m.nextReply++
        m.pulls.set(reply, worker.id)
        pulls.push({ _tag: "Pull", reply, request: { instanceId: INSTANCE, workerId: worker.id, pageSize: 3 } })
      }
    }
    exec(m, r, [...workerOrder(m).map((worker) => heartbeat(m, worker)), ...pulls, { _tag: "Tick" }])
    settle(m, r)
  }
  if (m.released) return
  if (m.outcome === null) fail(m, `the instance did not finish with every worker doing its work (R-FIN-1, R-REC-1)`)
  hit("drained")
  exec(m, r, [{ _tag: "OutcomeAcked" }])
  if (!m.released || m.instance !== null || m.rows.size > 0)
    fail(m, "the acknowledged instance was not released and deleted (R-FIN-6)")
}

describe("machine model", () => {
  it("R-STATE R-MAP R-DISP R-RETRY R-WORK R-FIN R-REC-2 model: random interleavings keep store, counters and outcome consistent", () => {
    fc.assert(
      fc.property(jobArb, fc.commands([commandArb], { maxCommands: 40, size: "max" }), (job, commands) => {
        started.length = 0
        fc.modelRun(setup(job), commands)
        const run = started[0]
        if (run !== undefined) drain(run.model, run.real)
      }),
      {
        numRuns: Number(process.env["MODEL_RUNS"] ?? 1_000),
        // A failure prints its seed and path; MODEL_SEED and MODEL_PATH replay it.
        ...(process.env["MODEL_SEED"] === undefined ? {} : { seed: Number(process.env["MODEL_SEED"]) }),
        ...(process.env["MODEL_PATH"] === undefined ? {} : { path: process.env["MODEL_PATH"] })
      }
    )
    if (process.env["MODEL_STATS"] !== undefined) console.log(reached)
  })
})
