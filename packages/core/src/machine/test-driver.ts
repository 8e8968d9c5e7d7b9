/**
 * A small driver for the machine's unit tests: it creates an instance, lets workers join by heartbeat,
 * steps with events at a time the test chooses, and keeps a model store that applies every write batch,
 * so tests can assert on what a tracker would have stored. Not a test file itself.
 */
import { resolveConfigSync, type JobConfig } from "../model/config.ts"
import { RejectedError } from "../model/errors.ts"
import type { JobKind, Progress } from "../model/instance.ts"
import type { DispatchedTask, StatusReport } from "../model/messages.ts"
import { TaskStatus } from "../model/status.ts"
import type { TaskBody, TaskRow } from "../model/task.ts"
import { decodeTaskError, type TaskError } from "../model/task-error.ts"
import { findTask } from "./blocks.ts"
import { createInstance, restoreInstance } from "./instance.ts"
import type { StoredInstance } from "../model/store.ts"
import type {
  LiveTask,
  MachineEvent,
  MachineState,
  ReplyValue,
  StandingWorker,
  StepOutput,
  WorkerState
} from "./state.ts"
import type { ReportsReply } from "../model/messages.ts"
import { step } from "./step.ts"

export const INSTANCE = "inst-1"
export const LOCAL = "local"

export interface DriverInit {
  readonly kind?: JobKind
  readonly config?: Partial<JobConfig>
  readonly params?: string
  readonly localWorkerId?: string
  readonly seed?: number
  readonly now?: number
  /** Standing workers the host declares (R-WORK-6). */
  readonly standing?: ReadonlyArray<StandingWorker>
}

export interface JoinOptions {
  readonly slots?: number
  readonly freeSlots?: number
  readonly queueLength?: number
  readonly idle?: boolean
  /** The worker process's incarnation (R-WORK-2: a new one loses the old one's tasks). */
  readonly incarnation?: string
  /** Highest batch seq the worker had taken (R-WORK-3). */
  readonly seen?: number
  /** The lowest batch seq this incarnation took (R-WORK-2). */
  readonly firstSeen?: number
  /** The worker's message number (R-WORK-3). */
  readonly n?: number
}

export const config = (overrides: Partial<JobConfig> = {}): JobConfig => resolveConfigSync(overrides)

export class Driver {
  readonly state: MachineState
  now: number
  /** Every task row as the store holds it after the writes seen so far. */
  readonly store = new Map<string, TaskRow>()
  readonly outputs: StepOutput[] = []
  private nextReply = 1

  constructor(state: MachineState, now: number) {
    this.state = state
    this.now = now
  }

  static create(init: DriverInit = {}): Driver {
    const now = init.now ?? 0
    const state = createInstance(
      {
        instanceId: INSTANCE,
        job: "job",
        kind: init.kind ?? "mapReduce",
        config: config(init.config),
        params: init.params ?? '{"p":1}',
        localWorkerId: init.localWorkerId ?? LOCAL,
        seed: init.seed ?? 7,
        ...(init.standing === undefined ? {} : { standing: init.standing })
      },
      now
    )
    return new Driver(state, now)
  }

  static restore(
    stored: StoredInstance,
    localWorkerId: string,
    now: number,
    standing: ReadonlyArray<StandingWorker> = []
  ): Driver {
    const driver = new Driver(restoreInstance(stored, localWorkerId, now, standing), now)
    for (const row of stored.live) driver.store.set(row.id, row)
    return driver
  }

  get last(): StepOutput {
    const out = this.outputs[this.outputs.length - 1]
    if (out === undefined) throw new Error("no step yet")
    return out
  }

  /** Steps at `at` (default: the driver's current time) and applies the write to the model store. */
  step(events: ReadonlyArray<MachineEvent> = [], at?: number): StepOutput {
    if (at !== undefined) this.now = at
    const out = step(this.state, events, this.now)
    if (out.write !== null) {
      for (const row of out.write.inserts) this.store.set(row.id, row)
      for (const update of out.write.updates) {
        const row = this.store.get(update.id)
        if (row === undefined) throw new Error(`update of a task never inserted: ${update.id}`)
        this.store.set(update.id, { ...row, ...update })
      }
    }
    this.outputs.push(out)
    return out
  }

  replyId(): number {
    return this.nextReply++
  }

  heartbeatEvent(workerId: string, options: JoinOptions = {}): MachineEvent & { _tag: "Heartbeat" } {
    const slots = options.slots ?? 4
    return {
      _tag: "Heartbeat",
      reply: this.replyId(),
      heartbeat: {
        instanceId: INSTANCE,
        workerId,
        slots,
        freeSlots: options.freeSlots ?? slots,
        queueLength: options.queueLength ?? 0,
        idle: options.idle ?? false,
        ...(options.incarnation === undefined ? {} : { incarnation: options.incarnation }),
        ...(options.seen === undefined ? {} : { seen: options.seen }),
        ...(options.firstSeen === undefined ? {} : { firstSeen: options.firstSeen }),
        ...(options.n === undefined ? {} : { n: options.n })
      }
    }
  }

  /** A worker heartbeats (joins, refreshes, or says it is idle). */
  heartbeat(workerId: string, options: JoinOptions = {}, at?: number): StepOutput {
    return this.step([this.heartbeatEvent(workerId, options)], at)
  }

  /** The current attempt of a live task. */
  attempt(taskId: string): number {
    return this.live(taskId).attempt
  }

  reportsEvent(workerId: string, reports: ReadonlyArray<StatusReport>, n?: number): MachineEvent & { _tag: "Reports" } {
    return {
      _tag: "Reports",
      reply: this.replyId(),
      batch: { instanceId: INSTANCE, workerId, reports, ...(n === undefined ? {} : { n }) }
    }
  }

  /** Sends reports and returns the machine's answer to them. */
  report(workerId: string, reports: ReadonlyArray<StatusReport>, at?: number): ReportsReply {
    const event = this.reportsEvent(workerId, reports)
    const out = this.step([event], at)
    const value = replyValue(out, event.reply)
    if (value instanceof RejectedError || value._tag !== "Reports")
      throw new Error(`unexpected reply ${JSON.stringify(value)}`)
    return value.reply
  }

  /** Reports for the task's current attempt. */
  running(workerId: string, taskId: string, at?: number): ReportsReply {
    return this.report(workerId, [{ taskId, attempt: this.attempt(taskId), status: TaskStatus.Running }], at)
  }

  succeed(workerId: string, taskId: string, result = '"ok"', at?: number): ReportsReply {
    return this.report(workerId, [{ taskId, attempt: this.attempt(taskId), status: TaskStatus.Succeeded, result }], at)
  }

  fail(workerId: string, taskId: string, error = "boom", at?: number): ReportsReply {
    return this.report(workerId, [{ taskId, attempt: this.attempt(taskId), status: TaskStatus.Failed, error }], at)
  }

  mapEvent(
    workerId: string,
    taskId: string,
    name: string,
    bodies: ReadonlyArray<TaskBody>,
    attempt?: number
  ): MachineEvent & { _tag: "Map" } {
    return {
      _tag: "Map",
      reply: this.replyId(),
      request: { instanceId: INSTANCE, workerId, taskId, attempt: attempt ?? this.attempt(taskId), name, bodies }
    }
  }

  /** A map call; returns the reply, or undefined while the call is suspended (R-MAP-4). */
  map(
    workerId: string,
    taskId: string,
    name: string,
    bodies: ReadonlyArray<TaskBody>,
    at?: number
  ): ReplyValue | RejectedError | undefined {
    const event = this.mapEvent(workerId, taskId, name, bodies)
    const out = this.step([event], at)
    return out.replies.find((reply) => reply.id === event.reply)?.value
  }

  /** Item bodies "0".."n-1" as JSON text. */
  static items(n: number): string[] {
    return Array.from({ length: n }, (_, i) => JSON.stringify(i))
  }

  /** The transport answered the send of batch `seq`: the worker took it (R-DISP-10). */
  delivered(workerId: string, seq: number, at?: number): StepOutput {
    return this.step([{ _tag: "Delivered", workerId, seq }], at)
  }

  /** The send of batch `seq` failed (R-DISP-7, R-DISP-10). */
  sendFailed(workerId: string, seq: number, tooLarge = false, error = "refused", at?: number): StepOutput {
    return this.step([{ _tag: "SendFailed", workerId, seq, tooLarge, error }], at)
  }

  /** The stored error of a task, decoded (R-RETRY-5); null if it has none. */
  error(taskId: string): TaskError | null {
    const text = this.row(taskId).lastError
    return text === null ? null : decodeTaskError(text)
  }

  live(taskId: string): LiveTask {
    const task = findTask(this.state, taskId)
    if (task === undefined) throw new Error(`task ${taskId} is not live`)
    return task
  }

  row(taskId: string): TaskRow {
    const row = this.store.get(taskId)
    if (row === undefined) throw new Error(`task ${taskId} is not stored`)
    return row
  }

  worker(workerId: string): WorkerState {
    const worker = this.state.workers.get(workerId)
    if (worker === undefined) throw new Error(`worker ${workerId} unknown`)
    return worker
  }

  /** Runs the root to Running on the local worker (which joins if needed). */
  startRoot(options: JoinOptions = {}): void {
    if (!this.state.workers.has(LOCAL)) this.heartbeat(LOCAL, options)
    this.running(LOCAL, "0")
  }
}

export const replyValue = (out: StepOutput, id: number): ReplyValue | RejectedError => {
  const reply = out.replies.find((r) => r.id === id)
  if (reply === undefined) throw new Error(`no reply ${id}`)
  return reply.value
}

/** Ids of the tasks sent in a step, per worker. */
export const sentTo = (out: StepOutput): Record<string, string[]> => {
  const result: Record<string, string[]> = {}
  for (const send of out.sends) (result[send.workerId] ??= []).push(...send.batch.tasks.map((task) => task.id))
  return result
}

/** The batches sent in a step, per worker: [workerId, seq, task ids]. */
export const sentBatches = (out: StepOutput): Array<[string, number, string[]]> =>
  out.sends.map((send) => [send.workerId, send.batch.seq, send.batch.tasks.map((task) => task.id)])

export const sentTasks = (out: StepOutput): DispatchedTask[] => out.sends.flatMap((send) => send.batch.tasks)

export const sentIds = (out: StepOutput): string[] => sentTasks(out).map((task) => task.id)

/** Tasks counted per name in a store, the way progress counts them (R-PROG-1). */
export const storeCounts = (rows: Iterable<TaskRow>): Progress["byName"] => {
  const result: Record<
    string,
    { total: number; waiting: number; dispatched: number; running: number; succeeded: number; failed: number }
  > = {}
  for (const row of rows) {
    const counter = (result[row.name] ??= { total: 0, waiting: 0, dispatched: 0, running: 0, succeeded: 0, failed: 0 })
    counter.total++
    if (row.status === TaskStatus.Waiting) counter.waiting++
    else if (row.status === TaskStatus.Dispatched) counter.dispatched++
    else if (row.status === TaskStatus.Succeeded) counter.succeeded++
    else if (row.status === TaskStatus.Failed) counter.failed++
    else counter.running++
  }
  return result
}
