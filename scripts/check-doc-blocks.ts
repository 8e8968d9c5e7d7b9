// Type-checks the ```ts blocks of README.md, docs/*.md and packages/*/README.md with the workspace's tsc, so an
// example cannot drift from the API. Each block becomes a module of its own in test/.doc-blocks/<document>/
// (gitignored; inside the workspace, so `@taskfold/*` and `effect` resolve), named `block-<line>.ts`, or after the
// file its first line names (`// worker.ts: …`), so that a later block of the same document can import it
// (`import { wordCount } from "./wordcount.ts"`). Blocks are ES modules: top-level await is allowed. A block right
// after `<!-- not compiled: reason -->` is skipped. Blocks that import @taskfold/worker are checked against
// that package's tsconfig (Workers types instead of Node's and the DOM's). Errors are reported at the block's line
// in its Markdown file; the exit code is 1 if there is one.
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const out = join(root, "test", ".doc-blocks")
const SKIP = /^<!--\s*not compiled:\s*\S.*-->$/
const NAMED = /^\/\/\s*([\w-]+\.ts)\b/

interface Block {
  readonly document: string
  /** The Markdown line of the block's first line of code (1-based). */
  readonly line: number
  readonly code: string
}

const documents = (): string[] => {
  const found = ["README.md"]
  for (const name of readdirSync(join(root, "docs")).sort()) if (name.endsWith(".md")) found.push(`docs/${name}`)
  for (const name of readdirSync(join(root, "packages")).sort()) {
    const readme = `packages/${name}/README.md`
    if (existsSync(join(root, readme))) found.push(readme)
  }
  return found
}

const blocksOf = (document: string): { blocks: Block[]; skipped: number } => {
  const lines = readFileSync(join(root, document), "utf8").split("\n")
  const blocks: Block[] = []
  let skipped = 0
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[i] ?? "")
    if (open === null) continue
    const [, indent = "", fence = "", lang] = open
    const start = i + 1
    let end = start
    while (end < lines.length && !(lines[end] ?? "").trimStart().startsWith(fence)) end++
    i = end
    if (lang !== "ts") continue
    let before = start - 2
    while (before >= 0 && (lines[before] ?? "").trim() === "") before--
    if (SKIP.test((lines[before] ?? "").trim())) {
      skipped++
      continue
    }
    const code = lines
      .slice(start, end)
      .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line.trimStart()))
      .join("\n")
    blocks.push({ document, line: start + 1, code })
  }
  return { blocks, skipped }
}

const WORKER = "packages/adapter-worker"

/**
 * The tsconfig of one group of blocks: the root's settings, or @taskfold/worker's, with the Workers types from that
 * package (installed there, not where the blocks are) and its globals.d.ts; unused names allowed.
 */
const writeConfig = (group: string, files: ReadonlyArray<string>): string => {
  const path = join(out, `tsconfig.${group}.json`)
  const worker = group === "worker"
  const extra = worker ? [join(root, WORKER, "src", "globals.d.ts")].filter((file) => existsSync(file)) : []
  const types = [relative(out, join(root, WORKER, "node_modules", "@cloudflare", "workers-types"))]
  const config = {
    extends: relative(out, join(root, worker ? `${WORKER}/tsconfig.json` : "tsconfig.json")),
    compilerOptions: { noEmit: true, noUnusedLocals: false, ...(worker ? { types } : {}) },
    files: [...extra, ...files].map((file) => relative(out, file)),
    include: []
  }
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`)
  return path
}

const started = Date.now()
rmSync(out, { recursive: true, force: true })
const where = new Map<string, Block>()
const groups = { node: [] as string[], worker: [] as string[] }
let skipped = 0
for (const document of documents()) {
  const found = blocksOf(document)
  skipped += found.skipped
  const folder = join(out, document.replace(/\.md$/, "").replaceAll("/", "-"))
  for (const block of found.blocks) {
    const file = join(folder, NAMED.exec(block.code)?.[1] ?? `block-${block.line}.ts`)
    if (where.has(file)) {
      console.error(`${block.document}:${block.line}: a second block named ${relative(folder, file)} in this document`)
      process.exit(1)
    }
    mkdirSync(folder, { recursive: true })
    writeFileSync(file, `${block.code}\nexport {}\n`)
    where.set(file, block)
    groups[/from "@taskfold\/worker"/.test(block.code) ? "worker" : "node"].push(file)
  }
}

const tsc = join(root, "node_modules", ".bin", "tsc")
let failed = 0
for (const [group, files] of Object.entries(groups)) {
  if (files.length === 0) continue
  const config = writeConfig(group, files)
  try {
    execFileSync(tsc, ["-p", config, "--pretty", "false"], { cwd: root, encoding: "utf8", stdio: "pipe" })
  } catch (error) {
    const { stdout, stderr, message } = error as { stdout?: unknown; stderr?: unknown; message?: unknown }
    const output = `${stdout ?? ""}${stderr ?? ""}` || String(message)
    // `test/.doc-blocks/README/block-23.ts(5,3): error TS…` → `README.md:27:3: error TS…`
    for (const line of output.split("\n")) {
      if (line.trim() === "") continue
      const at = /^(.+?)\((\d+),(\d+)\): (.*)$/.exec(line)
      const block = at === null ? undefined : where.get(resolve(root, at[1] ?? ""))
      if (at !== null && block !== undefined) {
        console.error(`${block.document}:${block.line + Number(at[2]) - 1}:${at[3]}: ${at[4]}`)
        failed++
      } else console.error(line)
    }
    failed ||= 1
  }
}
const checked = `${where.size} ts blocks (${skipped} marked not compiled)`
if (failed > 0) {
  console.error(`check-doc-blocks: ${checked}; ${failed} error${failed === 1 ? "" : "s"}`)
  process.exit(1)
}
console.log(`check-doc-blocks: ${checked} type-check, ${((Date.now() - started) / 1000).toFixed(1)} s`)
