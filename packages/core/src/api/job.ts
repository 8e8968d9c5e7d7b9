import { Effect } from "effect"
import { JobConfig, resolveConfig } from "../model/config.ts"
import { ConfigError } from "../model/errors.ts"
import { idProblem } from "../model/id.ts"
import { safeJson } from "../model/task-error.ts"
import type { JobKind } from "../model/instance.ts"
import type { Job } from "../model/job.ts"

const kinds: ReadonlyArray<JobKind> = ["standalone", "broadcast", "map", "mapReduce"]

/** Checks a job definition; a bad one throws a ConfigError naming what is wrong. */
export const defineJob = <J extends Job>(job: J): J => {
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
  return job
}
