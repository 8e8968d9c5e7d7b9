/**
 * Summarizes a V8 .cpuprofile (from `node --cpu-prof`) by self time per function:
 *   node bench/profile-summary.ts <file.cpuprofile | dir> [--top 15]
 * With a directory, the newest .cpuprofile in it is read. Self time is the sampled time spent in the
 * function's own code (not its callees), summed over every node of the call tree with the same
 * function, file and line. A second table sums self time by area: a folder of packages/, a package of
 * node_modules, Node's internals, or V8's own entries (garbage collector, program, idle).
 */
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join, relative } from "node:path"
import { argNumber } from "./lib/common.ts"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
  readonly startTime: number
  readonly endTime: number
}

const argv = process.argv.slice(2)
const topAt = argv.indexOf("--top")
const target = argv.find((arg, i) => !arg.startsWith("--") && (topAt < 0 || i !== topAt + 1))
if (target === undefined) {
  console.error("usage: node bench/profile-summary.ts <file.cpuprofile | dir> [--top 15]")
  process.exit(2)
}
const top = argNumber(argv, "top", 15)
const file = statSync(target).isDirectory()
  ? (readdirSync(target)
      .filter((name) => name.endsWith(".cpuprofile"))
      .map((name) => join(target, name))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0] ?? "")
  : target
if (file === "") {
  console.error(`no .cpuprofile in ${target}`)
  process.exit(2)
}
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile

const selfByNode = new Map<number, number>()
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i] as number
  selfByNode.set(id, (selfByNode.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
}
const cwd = process.cwd()
const where = (frame: CallFrame): string => {
  if (frame.url === "") return ""
  const path = frame.url.startsWith("file://") ? new URL(frame.url).pathname : frame.url
  const shown = path.startsWith(cwd)
    ? relative(cwd, path).replace(/^node_modules\/\.pnpm\/[^/]+\/node_modules\//, "")
    : path
  return `${shown}:${frame.lineNumber + 1}`
}
const byFunction = new Map<string, { name: string; where: string; micros: number }>()
let total = 0
for (const node of profile.nodes) {
  const micros = selfByNode.get(node.id) ?? 0
  total += micros
  const frame = node.callFrame
  const key = `${frame.functionName}\u0000${frame.url}\u0000${frame.lineNumber}`
  const entry = byFunction.get(key)
  if (entry === undefined)
    byFunction.set(key, { name: frame.functionName || "(anonymous)", where: where(frame), micros })
  else entry.micros += micros
}
const rows = [...byFunction.values()].sort((a, b) => b.micros - a.micros).slice(0, top)
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled, top ${rows.length} by self time`)
console.log(`${"self ms".padStart(9)} ${"self %".padStart(7)}  function  (file:line)`)
for (const row of rows) {
  const pct = total === 0 ? 0 : (100 * row.micros) / total
  console.log(
    `${(row.micros / 1000).toFixed(1).padStart(9)} ${pct.toFixed(1).padStart(6)}%  ${row.name}` +
      (row.where === "" ? "" : `  (${row.where})`)
  )
}

const area = (entry: { name: string; where: string }): string => {
  if (entry.where === "") return entry.name.startsWith("(") ? entry.name : "(native)"
  if (entry.where.startsWith("node:")) return "node internals"
  const source = /^packages\/[^/]+\/src\/[^/]+/.exec(entry.where)?.[0]
  if (source !== undefined) return source
  if (entry.where.startsWith("wasm:")) return "wasm (type stripping)"
  if (entry.where.startsWith("bench/")) return "bench"
  // Dependencies are shown by package: "effect/dist/…", "@scope/name/…".
  const parts = entry.where.split("/")
  return parts[0]?.startsWith("@") === true ? `${parts[0]}/${parts[1] ?? ""}` : (parts[0] ?? entry.where)
}
const byArea = new Map<string, number>()
for (const entry of byFunction.values()) byArea.set(area(entry), (byArea.get(area(entry)) ?? 0) + entry.micros)
console.log("\nby area")
for (const [name, micros] of [...byArea].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
  const pct = total === 0 ? 0 : (100 * micros) / total
  console.log(`${(micros / 1000).toFixed(1).padStart(9)} ${pct.toFixed(1).padStart(6)}%  ${name}`)
}
