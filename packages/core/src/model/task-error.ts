import { Cause, Schema } from "effect"

/**
 * Why a task attempt failed, as it is stored, reported and handed to reduce (R-RETRY-5): the thrown
 * value's tag (its `_tag`, an Error's name, or its JSON type), a reason where taskfold itself failed the
 * task (`result-too-large`, `worker-lost`, ...), the message, and the chain of causes under it.
 */
export interface TaskError {
  readonly tag: string
  readonly reason?: string
  readonly message: string
  readonly cause?: TaskError
}

export const TaskErrorSchema: Schema.Codec<TaskError> = Schema.Struct({
  tag: Schema.String.check(Schema.isMaxLength(256)),
  reason: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(256))),
  message: Schema.String,
  cause: Schema.optionalKey(Schema.suspend((): Schema.Codec<TaskError> => TaskErrorSchema))
})

/** Causes kept under an error; deeper ones are dropped (a cycle of causes ends here too). */
export const MAX_CAUSE_DEPTH = 4
/** Characters kept of one message. */
export const MAX_MESSAGE_LENGTH = 4_096

/**
 * An error taskfold itself decided (the task's processor did not throw it), tag `TaskfoldError`. Its reasons:
 * - `worker-lost`: the task's worker was lost (silent, restarted, or idle while holding it): a sub-task with
 *   `failover: false` or of a frequent job, a broadcast task, or the root or final task (R-WORK-2, R-FREQ-3)
 * - `killed`: the instance or this task was killed (R-FIN-7)
 * - `timed-out`: the instance ran past its instanceTimeout (R-FIN-5)
 * - `undeliverable`: delivered maxRedeliveries + 1 times without a receipt, with the last error (R-DISP-8)
 * - `too-large`: a batch of this one task is still too large for its worker's message limit (R-DISP-10)
 * - `result-too-large`: the result is over maxResultBytes of UTF-8; never cut, never retried (R-RETRY-3)
 * - `result-not-json`: the result cannot be stored as JSON (a BigInt, a cycle)
 * - `store-mismatch`: on resume the stored rows did not match the stored counters (R-FIN-4)
 * - `not-sent`: the task could not be posted to a worker thread
 * - `thread-crashed`: the worker thread running the task stopped
 * - `pool-closed`: the thread pool was closed before or while the task ran
 */
export const taskfoldError = (reason: string, message: string): TaskError => ({ tag: "TaskfoldError", reason, message })

const clip = (text: string): string =>
  text.length <= MAX_MESSAGE_LENGTH ? text : `${text.slice(0, MAX_MESSAGE_LENGTH)}… (${text.length} characters)`

/** JSON of any value that never throws: BigInt as text, cycles and failing getters named, not followed. */
export const safeJson = (value: unknown): string => {
  const seen = new WeakSet<object>()
  try {
    const text = JSON.stringify(value, (_key, item: unknown) => {
      if (typeof item === "bigint") return `${item}n`
      if (typeof item === "function") return `[function ${item.name || "anonymous"}]`
      if (typeof item === "symbol") return item.toString()
      if (item !== null && typeof item === "object") {
        if (seen.has(item)) return "[circular]"
        seen.add(item)
      }
      return item
    })
    return text ?? String(value)
  } catch (error) {
    return `[unserializable: ${describeSafely(error)}]`
  }
}

const describeSafely = (value: unknown): string => {
  try {
    if (value instanceof Error) return `${value.name}: ${value.message}`
    return String(value)
  } catch {
    return "a value that cannot be shown"
  }
}

const readField = (value: object, key: string): unknown => {
  try {
    return (value as Record<string, unknown>)[key]
  } catch {
    return undefined
  }
}

const tagOf = (value: unknown): string => {
  if (value === null) return "null"
  if (typeof value !== "object" && typeof value !== "function") return typeof value
  const tag = readField(value, "_tag")
  if (typeof tag === "string" && tag.length > 0) return tag.slice(0, 256)
  const name = value instanceof Error ? readField(value, "name") : undefined
  if (typeof name === "string" && name.length > 0) return name.slice(0, 256)
  return Array.isArray(value) ? "array" : "object"
}

/** Fields that are not what went wrong: the tag and the Error machinery. */
const HIDDEN_FIELDS = new Set(["_tag", "name", "message", "stack", "cause"])

const messageOf = (value: unknown, tag: string): string => {
  if (typeof value === "string") return value
  if (value === undefined) return "undefined"
  if (typeof value === "bigint") return `${value}n`
  if (value !== null && typeof value === "object") {
    const message = readField(value, "message")
    if (typeof message === "string" && message.length > 0) return message
    if (!(value instanceof Error) && typeof readField(value, "_tag") !== "string") return safeJson(value)
    // An error's own fields (a tagged error's), without the tag and the Error machinery, tell what happened.
    const fields: Record<string, unknown> = {}
    for (const key of Object.keys(value)) if (!HIDDEN_FIELDS.has(key)) fields[key] = readField(value, key)
    return Object.keys(fields).length > 0 ? safeJson(fields) : tag
  }
  return describeSafely(value)
}

const causeUnder = (value: unknown): unknown => {
  if (value === null || typeof value !== "object") return undefined
  if (Cause.isCause(value)) return undefined
  return readField(value, "cause")
}

/** The first failure (or defect) of an Effect's cause, with the rest of the cause as text under it. */
const fromCause = (cause: Cause.Cause<unknown>, depth: number): TaskError => {
  const failures = cause.reasons
  for (const reason of failures) {
    if (Cause.isFailReason(reason)) return toTaskError(reason.error, depth)
  }
  for (const reason of failures) {
    if (Cause.isDieReason(reason)) return toTaskError(reason.defect, depth)
  }
  return { tag: "Interrupted", message: "the task's effect was interrupted" }
}

/**
 * Turns anything a processor threw, rejected with or failed with into a TaskError (R-RETRY-5). Never throws,
 * whatever the value: BigInt, circular objects, objects whose getters throw, proxies, undefined.
 */
export const toTaskError = (value: unknown, depth = 0): TaskError => {
  try {
    if (value !== null && typeof value === "object" && Cause.isCause(value))
      return fromCause(value as Cause.Cause<unknown>, depth)
    if (isTaskError(value)) return value
    const tag = tagOf(value)
    const message = clip(messageOf(value, tag))
    const under = causeUnder(value)
    const reason = value !== null && typeof value === "object" ? readField(value, "reason") : undefined
    const error: { tag: string; reason?: string; message: string; cause?: TaskError } = { tag, message }
    if (typeof reason === "string") error.reason = reason.slice(0, 256)
    if (under !== undefined && depth < MAX_CAUSE_DEPTH) error.cause = toTaskError(under, depth + 1)
    return error
  } catch {
    return { tag: "unknown", message: "a value that cannot be shown" }
  }
}

const isTaskError = (value: unknown): value is TaskError => {
  if (value === null || typeof value !== "object" || value instanceof Error) return false
  const keys = Object.keys(value)
  return (
    typeof readField(value, "tag") === "string" &&
    typeof readField(value, "message") === "string" &&
    keys.every((key) => key === "tag" || key === "message" || key === "reason" || key === "cause")
  )
}

/** One line: "tag(reason): message; caused by …". */
export const describeError = (error: TaskError): string => {
  const head = `${error.tag}${error.reason === undefined ? "" : `(${error.reason})`}: ${error.message}`
  return error.cause === undefined ? head : `${head}; caused by ${describeError(error.cause)}`
}

/** Stored form of a task error: its JSON text. */
export const encodeTaskError = (error: TaskError): string => safeJson(error)

/** Reads a stored error back; text stored by an older version becomes a plain error with that message. */
export const decodeTaskError = (text: string): TaskError => {
  try {
    const value: unknown = JSON.parse(text)
    if (isTaskError(value)) return value
  } catch {
    // not JSON: plain text
  }
  return { tag: "Error", message: text }
}
