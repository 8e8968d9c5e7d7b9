import type { JobConfig } from "../model/config.ts"
import type { RejectedError } from "../model/errors.ts"
import type { FailedTask, JobKind, NameProgress, Outcome, Progress, RunRecord } from "../model/instance.ts"
import type {
  ContextAppend,
  Heartbeat,
  HeartbeatReply,
  MapRequest,
  PullRequest,
  ReportBatch,
  ReportsReply,
  StopMessage,
  TaskBatch
} from "../model/messages.ts"
import type { WriteBatch } from "../model/store.ts"
import { TaskStatus, type TaskKind } from "../model/status.ts"
import type { TaskBody } from "../model/task.ts"
import type { TaskError } from "../model/task-error.ts"
import type { ChildBlock } from "./blocks.ts"
import { type ChurningMap, Fifo, MinHeap } from "./collections.ts"

/** The progress counters of one task name (R-PROG-1), with the name they count. */
export interface NameCounter extends NameProgress {
  readonly name: string
}

/** What few tasks need: kept apart, so the many tasks that never retry, map or pin carry none of it. */
interface RareFields {
  /** Root and final: the local worker; broadcast: its own worker. */
  pinnedTo: string | undefined
  failures: number
  redeliveries: number
  /** Highest child number this task has mapped (R-MAP-2). */
  childCount: number
  /** Children mapped by the current attempt; restarts at 0 with each attempt (R-MAP-2). */
  mapCursor: number
  dueAt: number | null
  lastError: TaskError | null
  /** The worker its last delivery got no receipt from: the next goes elsewhere if it can (R-WIRE-3). */
  missedOn: string | undefined
}

/** A task that is not terminal yet, or became terminal in the step being built. */
export class LiveTask {
  readonly id: string
  readonly seq: number
  readonly run: RunState
  readonly kind: TaskKind
  readonly body: TaskBody
  /** The counters of its name, which hold the name. */
  readonly counter: NameCounter
  status: TaskStatus = TaskStatus.Waiting
  worker: WorkerState | undefined = undefined
  attempt = 0
  result: string | null = null
  /** The batch it was last sent in, while unacknowledged. */
  batch: SentBatch | undefined = undefined
  /** Seq of the batch it was last sent in: an idle heartbeat judges only tasks its worker had seen (R-WORK-3). */
  sentSeq = -1
  queued = false
  /** 0: clean; 1: changed; 2: its row is inserted in this step's write. */
  dirty: 0 | 1 | 2 = 0
  private rare: RareFields | undefined = undefined

  constructor(id: string, seq: number, run: RunState, kind: TaskKind, body: TaskBody, counter: NameCounter) {
    this.id = id
    this.seq = seq
    this.run = run
    this.kind = kind
    this.body = body
    this.counter = counter
  }

  get name(): string {
    return this.counter.name
  }

  /** The rare fields, created on the first write of a value other than their default. */
  private rareFields(): RareFields {
    this.rare ??= {
      pinnedTo: undefined,
      failures: 0,
      redeliveries: 0,
      childCount: 0,
      mapCursor: 0,
      dueAt: null,
      lastError: null,
      missedOn: undefined
    }
    return this.rare
  }

  get missedOn(): string | undefined {
    return this.rare?.missedOn
  }
  set missedOn(value: string | undefined) {
    if (value !== undefined || this.rare !== undefined) this.rareFields().missedOn = value
  }
  get pinnedTo(): string | undefined {
    return this.rare?.pinnedTo
  }
  set pinnedTo(value: string | undefined) {
    if (value !== undefined || this.rare !== undefined) this.rareFields().pinnedTo = value
  }
  get failures(): number {
    return this.rare?.failures ?? 0
  }
  set failures(value: number) {
    if (value !== 0 || this.rare !== undefined) this.rareFields().failures = value
  }
  get redeliveries(): number {
    return this.rare?.redeliveries ?? 0
  }
  set redeliveries(value: number) {
    if (value !== 0 || this.rare !== undefined) this.rareFields().redeliveries = value
  }
  get childCount(): number {
    return this.rare?.childCount ?? 0
  }
  set childCount(value: number) {
    if (value !== 0 || this.rare !== undefined) this.rareFields().childCount = value
  }
  get mapCursor(): number {
    return this.rare?.mapCursor ?? 0
  }
  set mapCursor(value: number) {
    if (value !== 0 || this.rare !== undefined) this.rareFields().mapCursor = value
  }
  /** A retried task waits until then (R-RETRY-1). */
  get dueAt(): number | null {
    return this.rare?.dueAt ?? null
  }
  set dueAt(value: number | null) {
    if (value !== null || this.rare !== undefined) this.rareFields().dueAt = value
  }
  get lastError(): TaskError | null {
    return this.rare?.lastError ?? null
  }
  set lastError(value: TaskError | null) {
    if (value !== null || this.rare !== undefined) this.rareFields().lastError = value
  }
}

/** A standing worker as the host declares it (R-WORK-6). */
export interface StandingWorker {
  readonly id: string
  readonly slots: number
}

/** Strikes from which a worker is unhealthy: one failed delivery is bad luck, two in a row a pattern. */
export const UNHEALTHY_STRIKES = 2

export interface WorkerState {
  readonly id: string
  readonly isLocal: boolean
  /**
   * Capacity the host starts on demand (a Worker invocation, the object's own worker): a candidate without
   * heartbeats while it holds nothing, judged by them while it holds tasks, and a candidate again once lost (R-WORK-6).
   */
  standing: boolean
  slots: number
  freeSlots: number
  queueLength: number
  lastSeen: number
  /** A send failed: no new work until the next heartbeat (R-DISP-7). */
  available: boolean
  lost: boolean
  /** Non-terminal tasks the tracker has placed on this worker. */
  held: number
  running: number
  succeeded: number
  failed: number
  /** The run of the worker's process its heartbeats name; a new one lost the old one's tasks. */
  incarnation: string | undefined
  /** Incarnations seen before: their late messages change nothing. */
  retired: string[]
  /** Highest message number seen from the worker (reports and heartbeats), -1 for none. */
  lastMessage: number
  /** The worker has taken a batch carrying the instance's params; later batches leave them out. */
  paramsSent: boolean
  /** Tasks per batch this worker takes; halved when a batch was too large for it (R-DISP-10). */
  batchLimit: number
  /** Batches whose send was answered but that no heartbeat has shown as seen yet, oldest first. */
  unseen: Array<{ readonly seq: number; at: number }>
  /** Deliveries in a row that got no receipt (the send failed or timed out); a receipt resets it. */
  strikes: number
  /**
   * An unhealthy worker (two strikes or more) gets no sub-tasks before this time, then one at a time until a
   * receipt: a peer that takes batches and never acknowledges them must not drain the job (R-WIRE-3).
   */
  restUntil: number
}

/** Tasks sent together; kept until acknowledged or timed out (R-DISP-8). */
export interface SentBatch {
  readonly worker: WorkerState
  readonly seq: number
  /** When it was sent; moved on by a stall of the tracker's own thread. */
  at: number
  /** The batch carried the instance's params. */
  readonly withParams: boolean
  tasks: LiveTask[]
  pending: number
}

/** One sub-instance: the whole instance for plain jobs, one trigger for frequent ones. */
export interface RunState {
  readonly n: number
  readonly rootId: string
  readonly startedAt: number
  readonly timeoutAt: number | null
  created: number
  succeeded: number
  failed: number
  /** Tasks of this run still in memory, counted apart from the counters to check them (R-FIN-4). */
  live: number
  pendingMaps: number
  finalCreated: boolean
  /** The first tasks that failed for good (up to maxReportedErrors), for the outcome (R-FIN-8). */
  errors: FailedTask[]
  rootOutcome: { ok: boolean; text: string } | undefined
  finalOutcome: { ok: boolean; text: string } | undefined
  done: boolean
}

export interface PendingMap {
  readonly request: MapRequest
  /** Every caller waiting for this call: a repeated call joins the one already waiting (R-MAP-6). */
  readonly replies: number[]
  readonly run: RunState
}

export type MachineEvent =
  | { readonly _tag: "Map"; readonly request: MapRequest; readonly reply: number }
  | { readonly _tag: "Reports"; readonly batch: ReportBatch; readonly reply: number }
  | { readonly _tag: "Heartbeat"; readonly heartbeat: Heartbeat; readonly reply: number }
  | { readonly _tag: "Pull"; readonly request: PullRequest; readonly reply: number }
  | { readonly _tag: "Context"; readonly request: ContextAppend; readonly reply: number }
  | { readonly _tag: "Kill"; readonly taskId: string | null; readonly reason: string; readonly reply: number }
  | { readonly _tag: "Delivered"; readonly workerId: string; readonly seq: number }
  /** The tracker's own thread was busy this long past the time it meant to wake (R-DISP-10). */
  | { readonly _tag: "Stalled"; readonly ms: number }
  | {
      readonly _tag: "SendFailed"
      readonly workerId: string
      readonly seq: number
      /** The receiver refused the message for its size: it is split, not counted (R-DISP-10). */
      readonly tooLarge: boolean
      readonly error: string
    }
  | { readonly _tag: "StoreFailed"; readonly cause: string }
  /**
   * The transport saw the worker end without its closing word (an invocation that crashed): it is lost now (R-WORK-7).
   */
  | { readonly _tag: "WorkerGone"; readonly workerId: string; readonly reason: string }
  | { readonly _tag: "OutcomeAcked" }
  | { readonly _tag: "Tick" }

export type ReplyValue =
  | { readonly _tag: "Mapped"; readonly created: number }
  | { readonly _tag: "Reports"; readonly reply: ReportsReply }
  | { readonly _tag: "Ack" }
  | { readonly _tag: "Heartbeat"; readonly reply: HeartbeatReply }
  | { readonly _tag: "Pulled"; readonly batch: TaskBatch | null }
  | { readonly _tag: "Context"; readonly accepted: boolean }

export interface Reply {
  readonly id: number
  readonly value: ReplyValue | RejectedError
}

export interface StepOutput {
  write: WriteBatch | null
  readonly sends: Array<{ readonly workerId: string; readonly batch: TaskBatch }>
  readonly stops: Array<{ readonly workerId: string; readonly message: StopMessage }>
  readonly replies: Reply[]
  /** Set in the step that decided it (R-FIN-6). */
  outcome: Outcome | null
  progress: Progress | null
  readonly warnings: string[]
  /** The earliest time at which a Tick has something to do. */
  wakeAt: number | null
  released: boolean
  /** Tasks this step sent back to Waiting because their delivery got no receipt (R-DISP-7, R-DISP-8). */
  redelivered: number
}

export interface MachineState {
  readonly instanceId: string
  readonly job: string
  readonly kind: JobKind
  readonly config: JobConfig
  readonly params: string
  localWorkerId: string
  readonly startedAt: number
  seed: number
  nextSeq: number
  nextRun: number
  /** Seq of the next batch sent, to any worker; stored, so it keeps rising across restarts. */
  nextBatch: number
  /** Unacknowledged batches by seq, for their send's answer. */
  readonly batchesBySeq: Map<number, SentBatch>
  /** Set on resume when the stored rows do not match the stored counters: the instance fails with it (R-FIN-4). */
  restoreProblem: string | null
  context: Record<string, unknown>
  contextBytes: number
  /** Live tasks by id, except waiting children still in their blocks; a task leaves when it becomes terminal. */
  readonly tasks: ChurningMap<string, LiveTask>
  readonly runs: Map<number, RunState>
  readonly history: RunRecord[]
  readonly workers: Map<string, WorkerState>
  /** Workers in join order, for round-robin. */
  readonly workerList: WorkerState[]
  cursor: number
  /**
   * Unpinned tasks ready now, and blocks of mapped children not yet taken out; entries whose task left
   * Waiting are skipped on the way out.
   */
  readonly waiting: Fifo<LiveTask | ChildBlock>
  /** Blocks of waiting children by parent id, to find a child by its id before it is taken out. */
  readonly blocks: Map<string, ChildBlock[]>
  readonly pinned: Map<string, Fifo<LiveTask>>
  /** Waiting tasks whose retry is not due yet. */
  readonly delayed: MinHeap<LiveTask>
  waitingCount: number
  /** Pull mode: sub-tasks dispatched, received or running. */
  subInFlight: number
  readonly pendingMaps: Fifo<PendingMap>
  readonly sentBatches: Fifo<SentBatch>
  readonly byName: Map<string, NameCounter>
  /** Token bucket of dispatchRate (R-DISP-6); null without a rate. */
  readonly rate: { readonly count: number; readonly perMs: number } | null
  tokens: number
  tokensAt: number
  nextTriggerAt: number | null
  outcome: Outcome | null
  outcomeAcked: boolean
  released: boolean
  lastProgressAt: number
  /** The instance row changed beyond its counters (context, history, outcome). */
  metaDirty: boolean
  /** Tasks changed and blocks created in the step being built, flushed as one write batch in this order. */
  dirty: Array<LiveTask | ChildBlock>
  deleteRuns: number[]
  out: StepOutput
}

export const newQueues = () => ({
  waiting: new Fifo<LiveTask | ChildBlock>(),
  blocks: new Map<string, ChildBlock[]>(),
  pinned: new Map<string, Fifo<LiveTask>>(),
  delayed: new MinHeap<LiveTask>((task) => task.dueAt ?? 0),
  pendingMaps: new Fifo<PendingMap>(),
  sentBatches: new Fifo<SentBatch>()
})
