import type { Job, JobKind } from "@taskfold/core"
import type { JobTable } from "@taskfold/core/wire"
import { readdirSync, statSync } from "node:fs"
import { extname, join, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { resolveJobImports } from "./job-imports.ts"
import { syntaxErrorAt } from "./syntax-error-at.ts"

/** Why a module or folder gave no usable jobs: a message for one line of output, no stack. */
export class JobLoadError extends Error {
  override readonly name = "JobLoadError"
}

const kinds: ReadonlyArray<JobKind> = ["standalone", "broadcast", "map", "mapReduce"]
const moduleExtensions = new Set([".ts", ".mts", ".js", ".mjs"])

/** An export that looks like what defineJob returns. */
export const isJob = (value: unknown): value is Job => {
  if (value === null || typeof value !== "object") return false
  const job = value as Record<string, unknown>
  return (
    typeof job["name"] === "string" && kinds.includes(job["kind"] as JobKind) && typeof job["process"] === "function"
  )
}

const modulesOf = (path: string): string[] => {
  let stats: ReturnType<typeof statSync>
  try {
    stats = statSync(path)
  } catch {
    throw new JobLoadError(`no job module or folder at ${path}`)
  }
  if (!stats.isDirectory()) return [path]
  return readdirSync(path)
    .filter(
      (name) =>
        moduleExtensions.has(extname(name)) && !name.endsWith(".d.ts") && !/\.(test|spec)\.[mc]?[jt]s$/.test(name)
    )
    .sort()
    .map((name) => join(path, name))
}

/**
 * Why `file` failed to import, on one line: where a syntax error is (file:line:column), else the error's
 * first line, which names the missing module or the file a missing import was asked from.
 */
const loadFailure = (file: string, error: unknown): string => {
  if (!(error instanceof Error)) return `cannot load ${file}: ${String(error)}`
  const first = error.message.split("\n")[0]
  const what = error.name === "Error" ? first : `${error.name}: ${first}`
  const at = error.name === "SyntaxError" ? syntaxErrorAt(file) : undefined
  return at === undefined ? `cannot load ${file}: ${what}` : `cannot load ${file}:${at}: ${what}`
}

/**
 * Imports a job module, or every .ts/.js module of a folder, and collects the job definitions they
 * export. Two definitions with one name are refused: a worker must know which one runs. The modules may
 * live anywhere: their `@taskfold/*` and `effect` imports fall back to this taskfold's (resolveJobImports).
 */
export const loadJobs = async (paths: string | ReadonlyArray<string>): Promise<JobTable> => {
  const jobs = new Map<string, Job>()
  const origin = new Map<string, string>()
  resolveJobImports()
  for (const given of typeof paths === "string" ? [paths] : paths) {
    const modules = modulesOf(resolve(given))
    for (const file of modules) {
      let exported: Record<string, unknown>
      try {
        exported = (await import(pathToFileURL(file).href)) as Record<string, unknown>
      } catch (error) {
        throw new JobLoadError(loadFailure(file, error))
      }
      for (const value of Object.values(exported)) {
        if (!isJob(value)) continue
        const seen = origin.get(value.name)
        if (seen !== undefined && jobs.get(value.name) !== value) {
          throw new JobLoadError(`job ${JSON.stringify(value.name)} is defined twice, in ${seen} and ${file}`)
        }
        jobs.set(value.name, value)
        origin.set(value.name, file)
      }
    }
    if (modules.length === 0) throw new JobLoadError(`no .ts or .js module in ${resolve(given)}`)
  }
  if (jobs.size === 0)
    throw new JobLoadError(`no job definition (defineJob) is exported by ${[paths].flat().join(", ")}`)
  return jobs
}
