import { Effect, Layer, Schema } from "effect"
import { JobConfig, resolveConfig } from "../model/config.ts"
import { ConfigError } from "../model/errors.ts"
import { idProblem } from "../model/id.ts"
import { safeJson } from "../model/task-error.ts"
import type { JobKind } from "../model/instance.ts"
import type { BroadcastJob, Job, MapJob, MapReduceJob, StandaloneJob } from "../model/job.ts"
import type {
  BroadcastDefinition,
  JobTypes,
  LayerFor,
  MapDefinition,
  MapReduceDefinition,
  ResultOf,
  ServicesOf,
  StandaloneDefinition,
  TaskSchemas
} from "../model/typed-job.ts"

const kinds: ReadonlyArray<JobKind> = ["standalone", "broadcast", "map", "mapReduce"]

/**
 * Checks a job definition; a bad one throws a ConfigError naming what is wrong. Its types follow from it
 * (typed-job.ts): `ctx.params` from `params`, `task.body` and `ctx.map` by task name from `tasks`, the reduce
 * stream from what `process` returns; an Effect processor's services must come from the job's `layer`.
 */
export function defineJob<P = unknown, const T extends TaskSchemas = Record<never, never>, F = unknown, G = unknown>(
  definition: MapReduceDefinition<P, T, F, G> & LayerFor<ServicesOf<F> | ServicesOf<G>>
): MapReduceJob & JobTypes<P, ResultOf<F>>
export function defineJob<P = unknown, const T extends TaskSchemas = Record<never, never>, F = unknown>(
  definition: MapDefinition<P, T, F> & LayerFor<ServicesOf<F>>
): MapJob & JobTypes<P, ResultOf<F>>
export function defineJob<P = unknown, F = unknown>(
  definition: StandaloneDefinition<P, F> & LayerFor<ServicesOf<F>>
): StandaloneJob & JobTypes<P, ResultOf<F>>
export function defineJob<P = unknown, F = unknown, G = unknown, H = unknown>(
  definition: BroadcastDefinition<P, F, G, H> & LayerFor<ServicesOf<F> | ServicesOf<G> | ServicesOf<H>>
): BroadcastJob & JobTypes<P, ResultOf<F>>
export function defineJob(definition: unknown): Job {
  const job = definition as Job
  if (job === null || typeof job !== "object") {
    throw new ConfigError({
      reason: "invalid-job",
      message: `defineJob needs an object with name, kind and process, not ${safeJson(job)}`
    })
  }
  const fail = (message: string): never => {
    throw new ConfigError({ reason: "invalid-job", message: `job ${safeJson(job.name)}: ${message}` })
  }
  if (typeof job.name !== "string" || job.name.length === 0) fail("a job needs a name")
  const nameIssue = idProblem(job.name)
  if (nameIssue !== undefined) fail(`its name: ${nameIssue}`)
  if (!kinds.includes(job.kind)) fail(`kind must be one of ${kinds.join(", ")}`)
  if (typeof job.process !== "function") fail("process must be a function")
  if (job.kind === "mapReduce" && typeof job.reduce !== "function") fail("a mapReduce job needs reduce")
  if (job.kind === "broadcast" && job.preProcess !== undefined && typeof job.preProcess !== "function")
    fail("preProcess must be a function")
  if (job.kind === "broadcast" && job.postProcess !== undefined && typeof job.postProcess !== "function")
    fail("postProcess must be a function")
  if (job.config !== undefined) {
    const checked = Effect.runSync(Effect.result(resolveConfig(job.config)))
    if (checked._tag === "Failure") fail(`its config: ${checked.failure.message}`)
  }
  if (job.overridable !== undefined) {
    if (!Array.isArray(job.overridable)) fail("overridable must be an array of config keys")
    const keys: ReadonlyArray<unknown> = job.overridable
    const unknown = keys.filter((key) => typeof key !== "string" || !Object.hasOwn(JobConfig.fields, key))
    if (unknown.length > 0) fail(`overridable names no config key: ${unknown.map((key) => safeJson(key)).join(", ")}`)
    // The schedule is never set at submit (host/submit-limits.ts): listing it would promise what is refused.
    if (keys.includes("frequent")) fail("overridable cannot list frequent: a submit never sets the schedule")
  }
  if (job.params !== undefined && !Schema.isSchema(job.params)) fail("params must be a Schema (effect/Schema)")
  if (job.tasks !== undefined) {
    if (job.tasks === null || typeof job.tasks !== "object") fail("tasks must map task names to Schemas")
    for (const [name, schema] of Object.entries(job.tasks)) {
      if (!Schema.isSchema(schema)) fail(`tasks.${name} must be a Schema (effect/Schema)`)
      if (name === "ROOT" || name === "FINAL") fail(`tasks cannot name ${name}: it is the engine's`)
    }
  }
  if (job.layer !== undefined && !Layer.isLayer(job.layer)) fail("layer must be a Layer (effect/Layer)")
  return job
}
