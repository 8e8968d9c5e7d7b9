import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"

const cli = resolve(dirname(fileURLToPath(import.meta.url)), "../bin/taskfold.mjs")

/** A folder of job modules outside the workspace: nothing there can find @taskfold/* on its own. */
const folder = mkdtempSync(join(tmpdir(), "taskfold-job-modules-"))
afterAll(() => rmSync(folder, { recursive: true, force: true }))

const write = (name: string, lines: ReadonlyArray<string>) => {
  const file = join(folder, name)
  writeFileSync(file, `${lines.join("\n")}\n`)
  return file
}

/** The command, started in the job modules' folder, as a user there would. */
const taskfold = (...args: string[]) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: folder,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, TASKFOLD_TOKEN: "" }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.on("close", (code) => done({ code, stdout, stderr }))
  })

/** One clear line on stderr, no stack trace. */
const oneLine = (stderr: string, pattern: RegExp) => {
  const lines = stderr.trimEnd().split("\n")
  expect(lines, stderr).toHaveLength(1)
  expect(stderr).not.toMatch(/^\s+at /m)
  expect(lines[0]).toMatch(pattern)
}

describe("job modules outside any project", () => {
  it("the temp folder has no node_modules above it, so only taskfold can provide its packages", () => {
    for (let at = folder; ; at = dirname(at)) {
      expect(existsSync(join(at, "node_modules")), at).toBe(false)
      if (dirname(at) === at) break
    }
  })

  it("a job in a folder without node_modules imports @taskfold/core and effect from the running taskfold", async () => {
    write("squares.ts", [
      'import { defineJob } from "@taskfold/core"',
      'import { Effect } from "effect"',
      "",
      "export const squares = defineJob({",
      '  name: "squares",',
      '  kind: "mapReduce",',
      "  process: (task, ctx) =>",
      '    task.isRoot ? ctx.map([1, 2, 3, 4], "square") : Effect.succeed((task.body as number) ** 2),',
      "  reduce: async (results) => {",
      "    let total = 0",
      '    for await (const result of results) if (result.name === "square") total += result.result as number',
      "    return total",
      "  }",
      "})"
    ])
    // In this process, and with the processors on a worker thread, which has module hooks of its own.
    for (const extra of [[], ["--threads", "1"]]) {
      const { code, stdout, stderr } = await taskfold("run", "./squares.ts", ...extra)
      expect(code, stderr).toBe(0)
      expect(JSON.parse(stdout)).toMatchObject({ ok: true, result: 30 })
    }
  })

  it("a .ts job with a syntax error gives one line naming its file, line and column", async () => {
    write("bad.ts", [
      'import { defineJob } from "@taskfold/core"',
      "",
      'export const bad = defineJob({ name: "bad", kind: "standalone", process: async (n: number => n })'
    ])
    const typed = await taskfold("run", "./bad.ts")
    expect(typed.code).toBe(1)
    oneLine(typed.stderr, /cannot load .*bad\.ts:3:\d+: SyntaxError: /)
    // An error V8 finds once the types are gone: the stripped code keeps every position.
    write("twice.ts", ["const n: number = 1", "export const m = 2", "let n = 3"])
    const twice = await taskfold("run", "./twice.ts")
    expect(twice.code).toBe(1)
    oneLine(twice.stderr, /cannot load .*twice\.ts:3:5: SyntaxError: Identifier 'n' has already been declared$/)
  })

  it("a .mjs job with a syntax error gives one line naming its file, line and column", async () => {
    write("bad.mjs", ['import { defineJob } from "@taskfold/core"', "", "export const bad = { a: 1,, }"])
    const { code, stderr } = await taskfold("run", "./bad.mjs")
    expect(code).toBe(1)
    oneLine(stderr, /cannot load .*bad\.mjs:3:27: SyntaxError: Unexpected token ','$/)
  })

  it("a job importing a package that exists nowhere gives one line naming the package and the job", async () => {
    write("lost.ts", ['import { nothing } from "no-such-package-anywhere"', "export const lost = nothing"])
    const { code, stderr } = await taskfold("run", "./lost.ts")
    expect(code).toBe(1)
    oneLine(stderr, /cannot load .*lost\.ts: .*'no-such-package-anywhere'/)
  })

  it("a job that throws while it loads gives one line with the file and the error", async () => {
    write("throws.mjs", ['throw new TypeError("not today")'])
    const { code, stderr } = await taskfold("run", "./throws.mjs")
    expect(code).toBe(1)
    oneLine(stderr, /cannot load .*throws\.mjs: TypeError: not today$/)
  })
})
