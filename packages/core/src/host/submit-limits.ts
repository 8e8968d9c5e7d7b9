import type { JobConfig, JobConfigOverrides } from "../model/config.ts"
import { RejectedError } from "../model/errors.ts"

/**
 * Limits that size the tracker's or a worker's memory and work: a submit may lower them, never raise them,
 * so whoever holds the operator's credential cannot make one instance outgrow what its job was sized for.
 */
export const loweredOnly = [
  "dispatchBatchSize",
  "maxWaitingTasks",
  "maxTaskBodyBytes",
  "maxResultBytes",
  "maxContextBytes",
  "queueAllowance",
  "maxInFlight",
  "maxWorkerSlots",
  "maxReportedErrors",
  "maxConcurrentSubInstances",
  "maxWorkers"
] as const satisfies ReadonlyArray<keyof JobConfig>

/** Never set at submit: the schedule of a frequent job is the job's own (one submit, many sub-instances). */
export const neverAtSubmit = ["frequent"] as const satisfies ReadonlyArray<keyof JobConfig>

const listed = (keys: ReadonlyArray<string>): string => (keys.length === 0 ? "nothing" : keys.join(", "))

const shown = (value: unknown): string => (value === null ? "null (unlimited)" : JSON.stringify(value))

/** Whether `value` is above `limit`; null is unlimited. A value of the wrong type is left to the config's schema. */
const raises = (value: unknown, limit: unknown): boolean =>
  limit === null ? false : value === null || (typeof value === "number" && typeof limit === "number" && value > limit)

/**
 * Why a submit may not set these overrides, or undefined if it may (the rule of docs/decisions.md, "Submit
 * limits"): only keys the job lists in `overridable` (none when it lists none), never `frequent`, and the
 * limits of `loweredOnly` at most at the job's resolved value (deployment defaults + job config).
 */
export const submitRefusal = (
  resolved: JobConfig,
  job: { readonly name: string; readonly overridable?: ReadonlyArray<keyof JobConfig> },
  overrides: JobConfigOverrides | undefined
): RejectedError | undefined => {
  const given: Readonly<Record<string, unknown>> = overrides ?? {}
  const keys = Object.keys(given)
  const refuse = (message: string) =>
    new RejectedError({ reason: "bad-input", message: `job ${JSON.stringify(job.name)}: ${message}` })
  const schedule = keys.filter((key) => (neverAtSubmit as ReadonlyArray<string>).includes(key))
  if (schedule.length > 0) return refuse(`a submit never sets ${listed(schedule)}: the schedule is the job's own`)
  const allowed: ReadonlyArray<string> = job.overridable ?? []
  const denied = keys.filter((key) => !allowed.includes(key))
  if (denied.length > 0)
    return refuse(`a submit may not set ${listed(denied)}; the job lets a submit override ${listed(allowed)}`)
  const raised = loweredOnly.filter((key) => Object.hasOwn(given, key) && raises(given[key], resolved[key]))
  if (raised.length > 0) {
    const above = raised.map((key) => `${key} ${shown(given[key])} is above the job's ${shown(resolved[key])}`)
    return refuse(`a submit may only lower these limits, never raise them: ${above.join("; ")}`)
  }
  return undefined
}
