import { Schema } from "effect"

/** Longest id accepted (instance, task, worker ids), in UTF-16 code units. */
export const MAX_ID_LENGTH = 256

// Control characters (C0, DEL, C1) and lone surrogates: text that logs, URLs and stores would mangle.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/** Why `text` is not a well-formed id, or undefined if it is one (R-WIRE-3). */
export const idProblem = (text: string): string | undefined => {
  if (text.length === 0) return "an id cannot be empty"
  if (text.length > MAX_ID_LENGTH) return `an id is at most ${MAX_ID_LENGTH} characters; this one has ${text.length}`
  if (CONTROL.test(text)) return "an id cannot hold control characters"
  if (LONE_SURROGATE.test(text)) return "an id cannot hold a lone surrogate (not well-formed UTF-16)"
  return undefined
}

/** A well-formed id: 1..256 characters, no control characters, no lone surrogates (R-WIRE-3). */
export const Id = Schema.String.check(Schema.makeFilter((text: string) => idProblem(text) ?? true))
