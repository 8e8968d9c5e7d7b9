import { availableParallelism } from "node:os"
import { parseArgs, type ParseArgsConfig } from "node:util"
import { MAX_THREADS } from "@taskfold/node"

/** Wrong use of the command: one line of explanation, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError"
}

/** Anything else that stops a command: one line, exit code 1. */
export class CommandError extends Error {
  override readonly name = "CommandError"
}

type Options = NonNullable<ParseArgsConfig["options"]>

export const helpOption = { help: { type: "boolean", short: "h" } } as const satisfies Options

/** node:util parseArgs, strict, with its error cut to one sentence. */
export const parse = <O extends Options>(args: ReadonlyArray<string>, options: O, positionals: number) => {
  const parsed = (() => {
    try {
      return parseArgs({ args: [...args], options, strict: true, allowPositionals: positionals > 0 })
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      throw new UsageError(message.split(". ")[0]?.replace(/\.$/, "") ?? message)
    }
  })()
  if (parsed.positionals.length > positionals)
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[positionals])}`)
  return parsed
}

export const required = (value: string | undefined, flag: string): string => {
  if (value === undefined || value.length === 0) throw new UsageError(`${flag} is required`)
  return value
}

export const integer = (value: string | undefined, flag: string, fallback: number, min = 1): number => {
  if (value === undefined) return fallback
  const number = Number(value)
  if (!Number.isInteger(number) || number < min)
    throw new UsageError(`${flag} must be an integer of at least ${min}, not ${JSON.stringify(value)}`)
  return number
}

/**
 * --threads: worker threads the processors run on (R-DISP-10); 0 runs them in the worker's own thread.
 * Default: the cores.
 */
export const threads = (value: string | undefined): number => {
  const number = integer(value, "--threads", availableParallelism(), 0)
  if (number > MAX_THREADS)
    throw new UsageError(`--threads must be an integer from 0 to ${MAX_THREADS}, not ${JSON.stringify(value)}`)
  return number
}

export const port = (value: string | undefined, flag: string, fallback: number): number => {
  const number = integer(value, flag, fallback, 0)
  if (number > 65_535) throw new UsageError(`${flag} must be a port number (0 to 65535), not ${value}`)
  return number
}

export const json = (value: string | undefined, flag: string): unknown => {
  if (value === undefined) return undefined
  try {
    return JSON.parse(value)
  } catch (error) {
    throw new UsageError(`${flag} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`)
  }
}

export const jsonObject = (value: string | undefined, flag: string): Record<string, unknown> | undefined => {
  const parsed = json(value, flag)
  if (parsed === undefined) return undefined
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    throw new UsageError(`${flag} must be a JSON object`)
  return parsed as Record<string, unknown>
}

export const url = (value: string | undefined, flag: string): string => {
  const text = required(value, flag)
  let parsed: URL
  try {
    parsed = new URL(text)
  } catch {
    throw new UsageError(`${flag} must be a URL such as http://127.0.0.1:7070, not ${JSON.stringify(text)}`)
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw new UsageError(`${flag} must be an http(s) URL, not ${JSON.stringify(text)}`)
  return text.replace(/\/+$/, "")
}

/** The shared secret: --token, else the TASKFOLD_TOKEN environment variable (kept out of `ps`). */
export const token = (value: string | undefined): string => {
  const given = value ?? process.env["TASKFOLD_TOKEN"]
  if (given === undefined || given.length === 0)
    throw new UsageError("--token (or the TASKFOLD_TOKEN environment variable) is required")
  return given
}
