// The packages as a user gets them: builds and packs every published package, installs the tarballs with
// npm into a scratch project outside the workspace, and uses them there: a plain .js job, a .ts consumer
// that `tsc --strict` (module nodenext) must accept, the `taskfold` bin (run, serve, worker, submit), a Vite
// build of a page on @taskfold/idb; publint and @arethetypeswrong/cli check each tarball.
import { execFileSync, spawn } from "node:child_process"
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const published = ["core", "adapter-node", "adapter-worker", "adapter-idb", "cli"]
const bin = (name) => join(root, "node_modules", ".bin", name)
const pnpm = process.env.npm_execpath ?? "pnpm"
const secret = "consumer-test-secret-0123456789"
const started = Date.now()

const say = (line) => console.log(`consumer: ${line}`)
const fail = (what, error) => {
  console.error(`consumer: FAILED ${what}`)
  if (error?.stdout) console.error(String(error.stdout))
  if (error?.stderr) console.error(String(error.stderr))
  if (!error?.stdout && !error?.stderr) console.error(error instanceof Error ? error.message : String(error))
  process.exit(1)
}
/** Runs a command to its end; its output is shown only if it fails. */
const run = (what, command, args, cwd, env = {}) => {
  try {
    return execFileSync(command, args, {
      cwd,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
      maxBuffer: 64 * 1024 * 1024
    })
  } catch (error) {
    return fail(what, error)
  }
}

const scratch = mkdtempSync(join(tmpdir(), "taskfold-consumer-"))
const children = []
const cleanUp = () => {
  for (const child of children) child.kill("SIGKILL")
  rmSync(scratch, { recursive: true, force: true })
}
process.on("exit", cleanUp)

// 1. Build and pack.
run("build", pnpm, ["build"], root)
const packs = join(scratch, "packs")
mkdirSync(packs)
for (const dir of published)
  run(`pack ${dir}`, pnpm, ["pack", "--pack-destination", packs], join(root, "packages", dir))
const tarballs = Object.fromEntries(
  readdirSync(packs).map((file) => [`@${file.replace(/-0\.\d+\.\d+\.tgz$/, "").replace("-", "/")}`, join(packs, file)])
)
say(`packed ${Object.keys(tarballs).join(", ")}`)

// 2. Each tarball as a registry would serve it: publint (strict) and the ESM-only profile of attw.
for (const [name, tarball] of Object.entries(tarballs)) {
  run(`publint ${name}`, bin("publint"), ["run", tarball, "--strict", "--level", "warning"], root)
  // The CLI is a bin, with no module to import.
  if (name === "@taskfold/cli") continue
  // @taskfold/worker's types need the Workers runtime's modules (cloudflare:workers), which no Node resolves.
  const ignore = name === "@taskfold/worker" ? ["--ignore-rules", "internal-resolution-error"] : []
  run(`attw ${name}`, bin("attw"), [tarball, "--profile", "esm-only", "--no-color", ...ignore], root)
}
say("publint and attw are clean")

// 3. A scratch project that installs the tarballs with npm.
const project = join(scratch, "project")
mkdirSync(project)
const files = {
  "package.json": JSON.stringify(
    {
      name: "taskfold-consumer",
      private: true,
      type: "module",
      dependencies: Object.fromEntries(Object.entries(tarballs).map(([name, file]) => [name, `file:${file}`])),
      devDependencies: { "@types/node": "24.19.2", effect: "4.1.0" },
      // The packages depend on each other by version: these are the ones that version means here.
      overrides: Object.fromEntries(Object.entries(tarballs).map(([name, file]) => [name, `file:${file}`]))
    },
    null,
    2
  ),
  "sum.mjs": `import { defineJob } from "@taskfold/core"

export const sum = defineJob({
  name: "consumer-sum",
  kind: "mapReduce",
  config: { heartbeatInterval: 200 },
  process: async (task, ctx) =>
    task.isRoot ? ctx.map(Array.from({ length: 1000 }, (_, i) => i + 1), "add") : task.body,
  reduce: async (results) => {
    let total = 0
    for await (const result of results) if (result.name === "add" && result.ok) total += result.result
    return total
  }
})
`,
  "run.mjs": `import { runJob } from "@taskfold/core"
import { sum } from "./sum.mjs"

const run = await runJob(sum)
if (!run.ok || run.result !== 500500) throw new Error("wrong outcome: " + JSON.stringify(run.outcome))
console.log("ok " + run.result)
`,
  "consumer.ts": `import { defineJob, runJob, type RunResult } from "@taskfold/core"
import { workerCredential } from "@taskfold/core/wire"
import { openSqliteStore, serveTracker } from "@taskfold/node"
import { Schema } from "effect"

// Typed as the guide shows: params, bodies by task name and results, with no cast.
const job = defineJob({
  name: "typed",
  kind: "mapReduce",
  params: Schema.Struct({ words: Schema.Array(Schema.String) }),
  tasks: { count: Schema.String },
  process: async (task, ctx) => (task.isRoot ? ctx.map(ctx.params.words, "count") : task.body.length),
  reduce: async (results) => {
    let letters = 0
    for await (const result of results) if (result.ok && result.name === "count") letters += result.result
    return letters
  }
})
const run: Promise<RunResult> = runJob(job, { workers: 2, params: { words: ["map", "reduce"] } })
const credential: Promise<string> = workerCredential("a-secret-of-16-characters", "w1")
export { credential, openSqliteStore, run, serveTracker }
`,
  "tsconfig.json": JSON.stringify(
    {
      compilerOptions: {
        strict: true,
        module: "nodenext",
        moduleResolution: "nodenext",
        target: "es2023",
        // effect's declarations name Web Crypto types (CryptoKey, JsonWebKey), which only the DOM library has.
        lib: ["es2023", "dom"],
        types: ["node"],
        noEmit: true,
        skipLibCheck: false
      },
      include: ["consumer.ts"]
    },
    null,
    2
  ),
  "page/index.html": `<!doctype html>
<html lang="en"><head><meta charset="utf-8" /><title>taskfold page</title></head>
<body><script type="module" src="./main.js"></script></body></html>
`,
  "page/main.js": `import { openIdbStore } from "@taskfold/idb"
import { runJob } from "@taskfold/core"
import { sum } from "./sum.mjs"

const store = await openIdbStore({ name: "consumer" })
const run = await runJob(sum, { store })
document.body.textContent = run.ok ? "ok " + run.result : "failed"
`
}
mkdirSync(join(project, "page"))
for (const [file, text] of Object.entries(files)) writeFileSync(join(project, file), text)
run("npm install", "npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], project)
say("npm installed the tarballs")

// 4. A plain .js job, and the .ts consumer under tsc --strict.
const ran = run("a plain .js job", process.execPath, ["run.mjs"], project)
if (!ran.includes("ok 500500")) fail("a plain .js job", { stdout: ran })
run("tsc --strict on a .ts consumer", bin("tsc"), ["-p", "tsconfig.json"], project)
// Without the DOM library only effect's Web Crypto names may be missing: taskfold's declarations need none.
try {
  execFileSync(bin("tsc"), ["-p", "tsconfig.json", "--lib", "es2023"], { cwd: project, encoding: "utf8" })
} catch (error) {
  const ours = String(error.stdout)
    .split("\n")
    .filter((line) => line.includes("@taskfold/"))
  if (ours.length > 0) fail("taskfold's declarations without the DOM library", { stdout: ours.join("\n") })
}
say("a .js job runs; tsc --strict accepts a .ts consumer")

// 5. The bin, installed: taskfold run, then serve + worker + submit.
const taskfold = join(project, "node_modules", ".bin", "taskfold")
const line = run("taskfold run", taskfold, ["run", "./sum.mjs"], project)
if (!/"ok":true/.test(line) || !line.includes("500500")) fail("taskfold run", { stdout: line })
// A job module outside the project, with no node_modules beside it: its imports come from the project.
const outside = join(scratch, "elsewhere")
mkdirSync(outside)
copyFileSync(join(project, "sum.mjs"), join(outside, "job.mjs"))
const elsewhere = run("taskfold run, a job outside the project", taskfold, ["run", join(outside, "job.mjs")], project)
if (!elsewhere.includes("500500")) fail("taskfold run, a job outside the project", { stdout: elsewhere })
const start = (what, args, pattern) =>
  new Promise((done) => {
    const child = spawn(taskfold, args, { cwd: project, env: { ...process.env, TASKFOLD_TOKEN: secret } })
    children.push(child)
    let output = ""
    const timer = setTimeout(() => fail(`${what}: no "${pattern}" within 30 s`, { stderr: output }), 30_000)
    const look = (chunk) => {
      output += chunk
      const found = pattern.exec(output)
      if (found !== null) {
        clearTimeout(timer)
        done(found)
      }
    }
    child.stdout.setEncoding("utf8").on("data", look)
    child.stderr.setEncoding("utf8").on("data", look)
    child.on("exit", (code) => code !== null && code !== 0 && fail(`${what} exited ${code}`, { stderr: output }))
  })
const [, url] = await start("taskfold serve", ["serve", "--port", "0", "--jobs", "./sum.mjs"], /listening on (\S+)/)
await start("taskfold worker", ["worker", "--tracker", url, "--jobs", "./sum.mjs"], /registered/)
const submitted = run("taskfold submit", taskfold, ["submit", "consumer-sum", "--tracker", url, "--wait"], project, {
  TASKFOLD_TOKEN: secret
})
if (!/"ok":true/.test(submitted) || !submitted.includes("500500")) fail("taskfold submit", { stdout: submitted })
say("the installed bin runs, serves, works and submits")

// 6. A Vite build of a page on @taskfold/idb.
copyFileSync(join(project, "sum.mjs"), join(project, "page", "sum.mjs"))
run("vite build", bin("vite"), ["build", "page", "--outDir", "../page-dist", "--logLevel", "error"], project)
say(`a Vite page builds; all done in ${((Date.now() - started) / 1000).toFixed(0)} s`)
process.exit(0)
