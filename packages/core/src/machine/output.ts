import type { InstanceRow, Outcome, Progress } from "../model/instance.ts"
import type { DispatchedTask, StopMessage, TaskBatch } from "../model/messages.ts"
import type { TaskRow, TaskUpdate } from "../model/task.ts"
import { encodeTaskError } from "../model/task-error.ts"
import type { LiveTask, Reply, StepOutput } from "./state.ts"
import type { WriteBatch } from "../model/store.ts"

/*
 * What a step hands out, built with `new` rather than as object literals. V8 watches how long the objects
 * of each literal live; a step's output and the batches in it outlive a young collection now and then (the
 * tracker holds them while it performs the step), and once V8 decides to allocate a literal's objects in
 * the old generation, every one of them that dies there keeps the updates and tasks it refers to alive
 * until the next full collection: most of the garbage a run makes would then pile up in the old generation.
 */

export class Output implements StepOutput {
  write: WriteBatch | null = null
  readonly sends: Send[] = []
  readonly stops: Array<{ readonly workerId: string; readonly message: StopMessage }> = []
  readonly replies: Reply[] = []
  outcome: Outcome | null = null
  progress: Progress | null = null
  readonly warnings: string[] = []
  wakeAt: number | null = null
  released = false
  redelivered = 0
}

export class Send {
  readonly workerId: string
  readonly batch: TaskBatch
  constructor(workerId: string, batch: TaskBatch) {
    this.workerId = workerId
    this.batch = batch
  }
}

export class Batch implements TaskBatch {
  readonly instanceId: string
  readonly job: string
  // Declared, not defined: a batch without params has no params key at all (structured clone, schemas).
  declare readonly params?: string
  declare readonly maxResultBytes?: number
  readonly seq: number
  readonly context: TaskBatch["context"]
  readonly tasks: DispatchedTask[]
  constructor(
    instanceId: string,
    job: string,
    params: string | undefined,
    maxResultBytes: number | undefined,
    seq: number,
    context: TaskBatch["context"],
    tasks: DispatchedTask[]
  ) {
    this.instanceId = instanceId
    this.job = job
    if (params !== undefined) (this as { params?: string }).params = params
    if (maxResultBytes !== undefined) (this as { maxResultBytes?: number }).maxResultBytes = maxResultBytes
    this.seq = seq
    this.context = context
    this.tasks = tasks
  }
}

/** A task as its worker receives it. */
export class Dispatched implements DispatchedTask {
  readonly id: string
  readonly name: string
  readonly kind: DispatchedTask["kind"]
  readonly body: DispatchedTask["body"]
  readonly attempt: number
  constructor(task: LiveTask) {
    this.id = task.id
    this.name = task.name
    this.kind = task.kind
    this.body = task.body
    this.attempt = task.attempt
  }
}

export class Write implements WriteBatch {
  readonly instance: InstanceRow
  readonly inserts: TaskRow[]
  readonly updates: TaskUpdate[]
  readonly deleteRuns: number[]
  readonly deleteInstance: boolean
  constructor(
    instance: InstanceRow,
    inserts: TaskRow[],
    updates: TaskUpdate[],
    deleteRuns: number[],
    deleteInstance: boolean
  ) {
    this.instance = instance
    this.inserts = inserts
    this.updates = updates
    this.deleteRuns = deleteRuns
    this.deleteInstance = deleteInstance
  }
}

/** A task's changed fields. */
export class Update implements TaskUpdate {
  readonly id: string
  readonly seq: number
  readonly status: TaskUpdate["status"]
  readonly worker: string | null
  readonly attempt: number
  readonly failures: number
  readonly redeliveries: number
  readonly childCount: number
  readonly dueAt: number | null
  readonly result: string | null
  readonly resultCut: boolean
  readonly lastError: string | null
  constructor(task: LiveTask) {
    this.id = task.id
    this.seq = task.seq
    this.status = task.status
    this.worker = task.worker?.id ?? null
    this.attempt = task.attempt
    this.failures = task.failures
    this.redeliveries = task.redeliveries
    this.childCount = task.childCount
    this.dueAt = task.dueAt
    this.result = task.result
    this.resultCut = false
    this.lastError = task.lastError === null ? null : encodeTaskError(task.lastError)
  }
}
