// Lists every line over 120 characters in the tracked .ts, .tsx, .mjs, .js and .md files (`path:line: N characters`)
// and exits 1 if there is one. Biome formats code to 120 columns but wraps neither strings nor comments.
// Skipped: node_modules, dist, vendored and generated files. A line may stay longer only if it is one of these:
// (a) a test title kept on one line, so that searching for a rule id such as R-WORK-2 finds the whole title: a line
//     holding only the opening of it/test/describe (also .fails, .skip, .each, ...) with its title literal and the
//     head of the callback, e.g. `  it("R-WORK-2 a long title", async () => {`, or a line holding only the title
//     literal, e.g. `    "R-WORK-2 a long title",`, right after a line that ends in `it(`;
// (b) in Markdown, a table row (a line starting with `|`) or a line that is a single URL or link reference;
// (c) in a Markdown shell code block, a command line that cannot be wrapped with `\` because it is one word.
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"

const MAX = 120
const EXTENSIONS = /\.(ts|tsx|mjs|js|md)$/
const SKIPPED = /(^|\/)(node_modules|dist|vendor|generated)\/|\.generated\.|\.min\.js$|worker-configuration\.d\.ts$/
const LITERAL = /(["'`])(?:\\.|(?!\1).)*\1/.source
const TEST_CALL = /(?:it|test|describe)(?:\.\w+)*(?:\(.*\))?/.source
const TITLE_LINE = new RegExp(`^\\s*${TEST_CALL}\\(${LITERAL},(?:\\s*(?:async\\s*)?\\([^()]*\\)\\s*=>\\s*\\{?)?\\s*$`)
const TITLE_OPEN = new RegExp(`^\\s*${TEST_CALL}\\($`)
const TITLE_ONLY = new RegExp(`^\\s*${LITERAL},?$`)
const URL_LINE = /^\s*(?:[-*>]\s*)?(?:<?https?:\/\/\S+>?|\[[^\]]+\]:\s*\S+(?:\s+"[^"]*")?)$/
const SHELL_FENCE = /^(?:sh|bash|shell|console|zsh)?$/
const ONE_WORD = /^\s*(?:\$\s+)?\S+(?: \\)?$/

/** Whether the long line `lines[i]` of `path` is exempt; `fence` is the info string of the open code block, or null. */
const exempt = (path, lines, i, fence) => {
  const line = lines[i]
  if (!path.endsWith(".md"))
    return TITLE_LINE.test(line) || (TITLE_ONLY.test(line) && TITLE_OPEN.test(lines[i - 1] ?? ""))
  if (fence !== null) return SHELL_FENCE.test(fence) && ONE_WORD.test(line)
  return line.startsWith("|") || URL_LINE.test(line)
}

const files = execFileSync("git", ["ls-files", "-z"], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 })
  .split("\0")
  .filter((path) => EXTENSIONS.test(path) && !SKIPPED.test(path))

let count = 0
for (const path of files) {
  let text
  try {
    text = readFileSync(path, "utf8")
  } catch {
    continue // listed by git but deleted in the work tree
  }
  const lines = text.split(/\r?\n/)
  let fence = null
  lines.forEach((line, i) => {
    const marker = path.endsWith(".md") ? /^\s*(```|~~~)\s*([\w-]*)/.exec(line) : null
    const length = [...line].length
    if (length > MAX && !exempt(path, lines, i, fence)) {
      console.log(`${path}:${i + 1}: ${length} characters`)
      count++
    }
    if (marker !== null) fence = fence === null ? marker[2] : null
  })
}
if (count > 0) {
  console.log(`${count} line${count === 1 ? "" : "s"} over ${MAX} characters`)
  process.exit(1)
}
