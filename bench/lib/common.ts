/**
 * Small helpers shared by the bench runner and its scenario children. A scenario child prints exactly
 * one result line, prefixed with RESULT_PREFIX, as JSON on stdout; anything else it prints is ignored.
 */

export const RESULT_PREFIX = "BENCH_RESULT "

/** Prints a scenario child's result for the runner to pick up. */
export const emit = (value: object): void => {
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(value)}\n`)
}

/** Peak resident set size of this process so far, in bytes (Linux reports maxRSS in kilobytes). */
export const peakRssBytes = (): number => process.resourceUsage().maxRSS * 1024

/** `--name value` from argv, or the fallback. */
export const argValue = (argv: ReadonlyArray<string>, name: string, fallback: string): string => {
  const at = argv.indexOf(`--${name}`)
  const value = at >= 0 ? argv[at + 1] : undefined
  return value ?? fallback
}

export const argNumber = (argv: ReadonlyArray<string>, name: string, fallback: number): number => {
  const value = Number(argValue(argv, name, String(fallback)))
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a non-negative number`)
  return value
}

export const median = (values: ReadonlyArray<number>): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

export const MiB = 1024 * 1024
