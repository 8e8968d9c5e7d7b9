import type { Effect, Layer, Schema } from "effect"
import type { JobConfig, JobConfigOverrides } from "./config.ts"
import type { TaskContext } from "./job.ts"
import type { TaskError } from "./task-error.ts"

/**
 * The types a job definition carries, inferred by defineJob: params from its `params` schema, each task
 * name's body from its `tasks` schemas, results from what its processors return, and the services its
 * Effect processors need, which its `layer` must provide. At run time a job is the plain `Job`.
 */

/** A schema whose decoded and encoded forms are the same: what travels as JSON is what a processor sees. */
export type BodySchema<B = unknown> = Schema.Codec<B, B, never, never>

/** Body schemas by task name: `ctx.map(items, name)` takes items of that name's type, `task.body` holds one. */
export type TaskSchemas = { readonly [name: string]: BodySchema<unknown> }

type NoTasks = { readonly [name: string]: never }

/** The body type of task `N`: unknown when the job declares no task schemas. */
export type BodyOf<T, N> = N extends keyof T ? (T[N] extends BodySchema<infer B> ? B : unknown) : unknown

/** The root task: its body is the instance's params. */
export interface RootTask<P> {
  readonly id: string
  readonly name: "ROOT"
  readonly body: P
  readonly attempt: number
  readonly isRoot: true
}

/** A mapped task named N. */
export interface SubTask<N extends string, B> {
  readonly id: string
  readonly name: N
  readonly body: B
  readonly attempt: number
  readonly isRoot: false
}

/** The names a job maps: any string without task schemas, else the declared ones. */
export type TaskName<T> = [keyof T & string] extends [never] ? string : keyof T & string

type SubTasks<T> = [keyof T & string] extends [never]
  ? SubTask<string, unknown>
  : { readonly [N in keyof T & string]: SubTask<N, BodyOf<T, N>> }[keyof T & string]

/** Every task a processor of the job can be handed: narrow with `task.isRoot` or `task.name`. */
export type TaskOf<P, T> = RootTask<P> | SubTasks<T>

/** What a processor has besides its task: the params typed, and map typed by task name. */
export interface JobContext<P, T> extends Omit<TaskContext, "params" | "map"> {
  readonly params: P
  /** Maps out child tasks named `name`, each item the body of one (R-MAP-1); resolves with the number created. */
  readonly map: <N extends TaskName<T>>(items: ReadonlyArray<BodyOf<T, N>>, name: N) => Promise<number>
}

/** One terminal task as reduce or postProcess reads it: what its processor returned, or why it failed. */
export type TypedResult<A> =
  | {
      readonly taskId: string
      readonly name: string
      readonly ok: true
      readonly result: A
      readonly error?: undefined
    }
  | {
      readonly taskId: string
      readonly name: string
      readonly ok: false
      /** The error's message. */
      readonly result: unknown
      readonly error?: TaskError
    }

/** The value a processor's return `F` settles to: an Effect's success, a promise's value, or the value. */
export type ResultOf<F> = F extends Effect.Effect<infer A, infer _E, infer _R> ? A : Awaited<F>

/** The services an Effect among `F` needs. */
export type ServicesOf<F> = F extends Effect.Effect<infer _A, infer _E, infer R> ? R : never

/** Without Effect services, a layer is optional; with them, one that provides them all is required. */
export type LayerFor<R> = [R] extends [never]
  ? { readonly layer?: Layer.Layer<never, unknown, never> }
  : { readonly layer: Layer.Layer<R, unknown, never> }

interface DefinitionBase<P> {
  readonly name: string
  readonly config?: JobConfigOverrides
  readonly overridable?: ReadonlyArray<keyof JobConfig>
  /** Checks the params when an instance starts (a submit of bad params is refused); types `ctx.params`. */
  readonly params?: BodySchema<P>
}

/** `F` is what `process` returns, `G` what `reduce` or `postProcess` returns: the types follow from them. */
export interface StandaloneDefinition<P, F> extends DefinitionBase<P> {
  readonly kind: "standalone"
  readonly process: (task: RootTask<P>, ctx: JobContext<P, NoTasks>) => F
}

export interface MapDefinition<P, T, F> extends DefinitionBase<P> {
  readonly kind: "map"
  readonly tasks?: T
  readonly process: (task: TaskOf<P, T>, ctx: JobContext<P, T>) => F
}

export interface MapReduceDefinition<P, T, F, G> extends DefinitionBase<P> {
  readonly kind: "mapReduce"
  readonly tasks?: T
  readonly process: (task: TaskOf<P, T>, ctx: JobContext<P, T>) => F
  /** Runs once over every terminal task's result, root and mappers included, in a deterministic order. */
  readonly reduce: (results: AsyncIterable<TypedResult<ResultOf<F>>>, ctx: JobContext<P, T>) => G
}

/** `H` is what `preProcess` returns: every broadcast task's body. */
export interface BroadcastDefinition<P, F, G, H> extends DefinitionBase<P> {
  readonly kind: "broadcast"
  /** Its result is the body of every broadcast task. */
  readonly preProcess?: (task: RootTask<P>, ctx: JobContext<P, NoTasks>) => H
  readonly process: (task: SubTask<string, ResultOf<H>>, ctx: JobContext<P, NoTasks>) => F
  readonly postProcess?: (results: AsyncIterable<TypedResult<ResultOf<F>>>, ctx: JobContext<P, NoTasks>) => G
}

declare const jobTypes: unique symbol

/** A job as defineJob returns it: the run-time Job, remembering its params and result types. */
export interface JobTypes<P, A> {
  readonly [jobTypes]?: { readonly params: P; readonly result: A }
}
