import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { stripTypeScriptTypes } from "node:module"
import { extname } from "node:path"

/**
 * `line:column` from the report Node writes for a syntax error: `<name>:<line>`, the source line (or
 * lines), a line of carets under the culprit, an empty line, then the error. Both `node --check` and the
 * type stripper's errors (their stack) have that shape. No caret line means the end of what is shown.
 */
const locationIn = (report: string, name: string): string | undefined => {
  const [head = "", ...rest] = report.split("\n")
  if (!head.startsWith(`${name}:`)) return undefined
  const line = /^\d+$/.exec(head.slice(name.length + 1))?.[0]
  if (line === undefined) return undefined
  const end = rest.indexOf("")
  const last = (end === -1 ? rest : rest.slice(0, end)).at(-1) ?? ""
  const carets = /^(\s*)\^+\s*$/.exec(last)
  return `${line}:${carets === null ? last.replace(/\s+$/, "").length + 1 : (carets[1] ?? "").length + 1}`
}

/** Node's own parser, in a child process: V8 tells a module's syntax error's place only to the console. */
const check = (args: ReadonlyArray<string>, name: string, input?: string): string | undefined => {
  const checked = spawnSync(process.execPath, ["--check", ...args], {
    encoding: "utf8",
    timeout: 10_000,
    ...(input === undefined ? {} : { input })
  })
  return checked.status === 0 ? undefined : locationIn(checked.stderr ?? "", name)
}

/** The stripper warns once that it is experimental; on stderr that line would spoil a one-line error. */
const stripQuietly = (source: string, file: string): string => {
  const emitWarning = process.emitWarning
  process.emitWarning = () => {}
  try {
    return stripTypeScriptTypes(source, { sourceUrl: file })
  } finally {
    process.emitWarning = emitWarning
  }
}

/**
 * Where the module at `file` (an absolute path) fails to parse, as `line:column`, or undefined when it
 * parses (the syntax error was thrown at run time, or is in a module it imports). TypeScript goes
 * through the type stripper Node uses, which reports TS syntax with its place; the JavaScript it leaves
 * keeps every position (types become blanks) and is checked as a module like a .js or .mjs file.
 */
export const syntaxErrorAt = (file: string): string | undefined => {
  const extension = extname(file)
  if (extension !== ".ts" && extension !== ".mts") return check([file], file)
  let code: string
  try {
    code = stripQuietly(readFileSync(file, "utf8"), file)
  } catch (error) {
    return error instanceof Error && typeof error.stack === "string" ? locationIn(error.stack, file) : undefined
  }
  return check(["--input-type=module"], "[stdin]", code)
}
