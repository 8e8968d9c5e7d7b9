import type { Effect, Layer, Schema } from "effect"
import type { JobConfig, JobConfigOverrides } from "./config.ts"
import type { TaskResult } from "./task.ts"

/** A task as a processor sees it. */
export interface TaskView {
  readonly id: string
  readonly name: string
  /** The decoded body: the JSON value mapped, or the bytes. The root's body is the instance's params. */
  readonly body: unknown
  readonly attempt: number
  readonly isRoot: boolean
}

export interface TaskContext {
  readonly instanceId: string
  readonly params: unknown
  /** The instance context as of the batch this task came in (R-CTX-1). */
  readonly context: Readonly<Record<string, unknown>>
  /** Aborted when the task or its instance is killed or stopped. */
  readonly signal: AbortSignal
  /**
   * Maps out child tasks named `name`: all of them are stored, or none (R-MAP-1). Resolves with the
   * number created; a retried task that maps the same items again creates none twice (R-MAP-2), so map
   * in a deterministic order. Suspends while the instance holds too many waiting tasks (R-MAP-4).
   */
  readonly map: (items: ReadonlyArray<unknown>, name: string) => Promise<number>
  /** Adds key/values to the instance context; resolves false if the append was dropped for size. */
  readonly appendContext: (entries: Record<string, unknown>) => Promise<boolean>
}

/** What a processor may return: a value, a promise of one, or an Effect (with no requirements). */
export type Returned<A> = A | Promise<A> | Effect.Effect<A, unknown>

export type Processor = (task: TaskView, context: TaskContext) => Returned<unknown>
export type Reducer = (results: AsyncIterable<TaskResult>, context: TaskContext) => Returned<unknown>

interface JobBase {
  readonly name: string
  readonly config?: JobConfigOverrides
  /**
   * The config keys a submit (HTTP, `taskfold submit`, a host's submit) may set; none by default. Limits that
   * size memory and work can only be lowered there, and `frequent` is never set (docs/decisions.md, "Submit
   * limits"). Starting the job from code (runJob, startJob, a host's start) may set any key.
   */
  readonly overridable?: ReadonlyArray<keyof JobConfig>
  /** Checks the params when an instance starts (typed-job.ts gives processors their type). */
  readonly params?: Schema.Codec<unknown, unknown, never, never>
  /** Body schemas by task name: a map call's items are checked against their name's (typed-job.ts). */
  readonly tasks?: { readonly [name: string]: Schema.Codec<unknown, unknown, never, never> }
  /** The services of the job's Effect processors, built once per worker and provided to each of them. */
  readonly layer?: Layer.Layer<never, unknown, never>
}
export interface StandaloneJob extends JobBase {
  readonly kind: "standalone"
  readonly process: Processor
}
export interface MapJob extends JobBase {
  readonly kind: "map"
  /** Runs the root (task.isRoot) and every mapped task. */
  readonly process: Processor
}
export interface MapReduceJob extends JobBase {
  readonly kind: "mapReduce"
  readonly process: Processor
  /** Runs once, on the local worker, over every terminal task's result in a deterministic order (R-FIN-3). */
  readonly reduce: Reducer
}
export interface BroadcastJob extends JobBase {
  readonly kind: "broadcast"
  /** Runs on the local worker first; its result is the body of every broadcast task (R-BC-1). */
  readonly preProcess?: Processor
  /** Runs once on every live worker. */
  readonly process: Processor
  /** Runs once all are done; by default the instance succeeds iff no task failed (R-BC-2). */
  readonly postProcess?: Reducer
}
export type Job = StandaloneJob | MapJob | MapReduceJob | BroadcastJob
