import { Effect, Schema } from "effect"

/** JSON can't carry bytes: a Uint8Array travels as {"$bytes": "<base64>"} anywhere in a message. */
const BYTES = "$bytes"

const toBase64 = (bytes: Uint8Array): string => {
  let binary = ""
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(binary)
}

const fromBase64 = (text: string): Uint8Array<ArrayBuffer> => {
  const binary = atob(text)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

export const encodeJson = (value: unknown): string =>
  JSON.stringify(value, (_key, item: unknown) => (item instanceof Uint8Array ? { [BYTES]: toBase64(item) } : item))

const reviveBytes = (_key: string, item: unknown): unknown => {
  if (item === null || typeof item !== "object") return item
  const encoded = (item as Record<string, unknown>)[BYTES]
  if (typeof encoded === "string" && !Array.isArray(item) && Object.keys(item).length === 1) return fromBase64(encoded)
  return item
}

/**
 * Parses JSON and turns {"$bytes": …} back into bytes; throws a SyntaxError on bad JSON or base64. A text without
 * the marker is parsed without a reviver, several times faster: a large message holds the tracker for less.
 */
export const parseJson = (text: string): unknown =>
  text.includes(`"${BYTES}"`) ? JSON.parse(text, reviveBytes) : JSON.parse(text)

/** A message that did not decode: the path of the first bad field and what was expected there. */
export interface DecodeFailure {
  readonly path: string
  readonly message: string
}

const pathOf = (message: string): string => /at (\[[^\n]*\])\s*$/m.exec(message)?.[1] ?? ""

/** Decodes a parsed message with its Schema; every field is checked, excess fields are refused. */
export const decodeMessage = <S extends Schema.Top>(
  schema: S,
  input: unknown
): Effect.Effect<S["Type"], DecodeFailure, S["DecodingServices"]> =>
  Schema.decodeUnknownEffect(schema)(input, { errors: "first", onExcessProperty: "error" }).pipe(
    Effect.mapError((error) => ({
      path: pathOf(error.message),
      message: error.message.split("\n")[0] ?? error.message
    }))
  )
