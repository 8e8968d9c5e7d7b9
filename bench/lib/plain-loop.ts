/**
 * The limit the machine is measured against: the same bookkeeping as the machine loop, in plain
 * JavaScript with bare Maps and arrays, no Effect, no schemas, no store rows. It is honest, not a
 * strawman: per-task records in a Map by id with a status, per-name counters moved on every status
 * change, round-robin assignment to 4 workers by credit (slots + queue allowance − held), batches of
 * at most 256 dispatched-task objects per message, report arrays checked for attempt, order and
 * worker, results kept by seq for a reduce, and a FINAL task once every task is terminal.
 *
 * It does NOT do what the machine does beyond that: build store rows and updates for a write batch,
 * validate map calls (reserved names, body sizes), keep retry/redelivery/liveness state, progress
 * snapshots, wake-up times, reply objects. The ratio machine / limit is therefore the price of all that.
 */
import { TaskKind, TaskStatus } from "@taskfold/core/adapter"
import { SLOTS, TASK_NAME, WORKERS, type LoopResult } from "./machine-loop.ts"

const QUEUE_ALLOWANCE = 256
const BATCH_SIZE = 256
const CREDIT = SLOTS + QUEUE_ALLOWANCE

interface Counter {
  total: number
  waiting: number
  dispatched: number
  running: number
  succeeded: number
  failed: number
}

interface Worker {
  readonly id: string
  held: number
  planned: PlainTask[]
  nextSeq: number
}

interface Batch {
  readonly worker: Worker
  readonly seq: number
  pending: number
}

interface PlainTask {
  readonly id: string
  readonly seq: number
  readonly name: string
  readonly kind: number
  readonly body: string
  readonly counter: Counter
  readonly pinned: boolean
  status: number
  worker: Worker | undefined
  attempt: number
  batch: Batch | undefined
  childCount: number
}

interface Dispatched {
  readonly id: string
  readonly name: string
  readonly kind: number
  readonly body: string
  readonly attempt: number
}

interface Report {
  readonly taskId: string
  readonly attempt: number
  readonly status: number
  readonly result?: string
}

interface Send {
  readonly workerId: string
  readonly seq: number
  readonly tasks: Dispatched[]
}

const move = (counter: Counter, from: number, to: number): void => {
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
      break
  }
  switch (to) {
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
      break
  }
}

export const runPlain = (bodies: ReadonlyArray<string>): LoopResult => {
  const tasks = new Map<string, PlainTask>()
  const counters = new Map<string, Counter>()
  const workers: Worker[] = WORKERS.map((id) => ({ id, held: 0, planned: [], nextSeq: 0 }))
  const workerById = new Map(workers.map((worker) => [worker.id, worker]))
  const local = workers[0] as Worker
  const waiting: PlainTask[] = []
  let head = 0
  let pinned: PlainTask[] = []
  /** Results by seq, the order a reduce reads them in. */
  const results: string[] = []
  let cursor = 0
  let nextSeq = 0
  let live = 0
  let finalCreated = false
  let outcome: { ok: boolean; result: string } | undefined
  let steps = 0
  let batches = 0

  const create = (id: string, name: string, kind: number, body: string, pin: boolean): void => {
    let counter = counters.get(name)
    if (counter === undefined) {
      counter = { total: 0, waiting: 0, dispatched: 0, running: 0, succeeded: 0, failed: 0 }
      counters.set(name, counter)
    }
    counter.total++
    counter.waiting++
    const task: PlainTask = {
      id,
      seq: nextSeq++,
      name,
      kind,
      body,
      counter,
      pinned: pin,
      status: TaskStatus.Waiting,
      worker: undefined,
      attempt: 0,
      batch: undefined,
      childCount: 0
    }
    tasks.set(id, task)
    live++
    if (pin) pinned.push(task)
    else waiting.push(task)
  }

  const setStatus = (task: PlainTask, status: number): void => {
    move(task.counter, task.status, status)
    task.status = status
  }

  const dispatch = (): Send[] => {
    for (const task of pinned) local.planned.push(task)
    pinned = []
    while (head < waiting.length) {
      let worker: Worker | undefined
      for (let tries = 0; tries < workers.length; tries++) {
        const candidate = workers[cursor++ % workers.length] as Worker
        if (CREDIT - candidate.held - candidate.planned.length > 0) {
          worker = candidate
          break
        }
      }
      if (worker === undefined) break
      worker.planned.push(waiting[head++] as PlainTask)
    }
    const sends: Send[] = []
    for (const worker of workers) {
      const planned = worker.planned
      if (planned.length === 0) continue
      worker.planned = []
      for (let from = 0; from < planned.length; from += BATCH_SIZE) {
        const to = Math.min(planned.length, from + BATCH_SIZE)
        const batch: Batch = { worker, seq: worker.nextSeq++, pending: to - from }
        const dispatched: Dispatched[] = new Array(to - from)
        for (let i = from; i < to; i++) {
          const task = planned[i] as PlainTask
          task.worker = worker
          task.batch = batch
          worker.held++
          setStatus(task, TaskStatus.Dispatched)
          dispatched[i - from] = {
            id: task.id,
            name: task.name,
            kind: task.kind,
            body: task.body,
            attempt: task.attempt
          }
        }
        sends.push({ workerId: worker.id, seq: batch.seq, tasks: dispatched })
      }
    }
    return sends
  }

  const applyReports = (workerId: string, reports: ReadonlyArray<Report>): void => {
    const worker = workerById.get(workerId)
    for (const report of reports) {
      const task = tasks.get(report.taskId)
      if (task === undefined || report.attempt < task.attempt || report.status <= task.status) continue
      if (report.attempt > task.attempt || task.worker !== worker) continue
      const batch = task.batch
      if (batch !== undefined) {
        batch.pending--
        task.batch = undefined
      }
      setStatus(task, report.status)
      if (report.status === TaskStatus.Succeeded) {
        const result = report.result ?? "null"
        results[task.seq] = result
        if (worker !== undefined) worker.held--
        tasks.delete(task.id)
        live--
        if (task.kind === TaskKind.Final) outcome = { ok: true, result }
      }
    }
  }

  const map = (
    taskId: string,
    attempt: number,
    workerId: string,
    name: string,
    items: ReadonlyArray<string>
  ): number => {
    const parent = tasks.get(taskId)
    if (parent === undefined || parent.attempt !== attempt || parent.worker?.id !== workerId) return -1
    for (const body of items) {
      const number = ++parent.childCount
      create(`${parent.id}.${number}`, name, TaskKind.Sub, body, false)
    }
    return items.length
  }

  const finalize = (): void => {
    if (live === 0 && !finalCreated) {
      finalCreated = true
      create("0.F", "FINAL", TaskKind.Final, "null", true)
    }
  }

  create("0", "ROOT", TaskKind.Root, "null", true)
  let sends = dispatch()
  steps++
  let rootDone: Report | undefined
  while (outcome === undefined) {
    let work = false
    if (rootDone !== undefined) {
      applyReports("local", [rootDone])
      rootDone = undefined
      work = true
    }
    for (const send of sends) {
      batches++
      work = true
      const acks: Report[] = []
      for (const task of send.tasks) {
        if (task.kind === TaskKind.Root) {
          applyReports(send.workerId, [{ taskId: task.id, attempt: task.attempt, status: TaskStatus.Running }])
          map(task.id, task.attempt, send.workerId, TASK_NAME, bodies)
          rootDone = { taskId: task.id, attempt: task.attempt, status: TaskStatus.Succeeded, result: "null" }
        } else {
          const result = task.kind === TaskKind.Final ? String(bodies.length) : "null"
          acks.push({ taskId: task.id, attempt: task.attempt, status: TaskStatus.Succeeded, result })
        }
      }
      if (acks.length > 0) applyReports(send.workerId, acks)
    }
    if (!work) throw new Error(`the plain loop stalled after ${steps} steps with no outcome`)
    finalize()
    sends = outcome === undefined ? dispatch() : []
    steps++
  }
  if (results.length !== bodies.length + 2)
    throw new Error(`the plain loop kept ${results.length} results, expected ${bodies.length + 2}`)
  return { ok: outcome.ok, succeeded: counters.get(TASK_NAME)?.succeeded ?? 0, steps, batches }
}
