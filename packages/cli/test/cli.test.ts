import { spawn } from "node:child_process"
import { createServer } from "node:net"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { workerCredential } from "@taskfold/core/wire"
import { loadJobs, serveTracker, type RunningTracker } from "@taskfold/node"

const here = dirname(fileURLToPath(import.meta.url))
const cli = resolve(here, "../bin/taskfold.mjs")
const fixtures = join(here, "fixtures")
const jobs = join(fixtures, "jobs.ts")
/** A secret long enough for serve and worker (16 characters at least). */
const LONG_SECRET = "a-secret-of-some-length"

const taskfold = (...args: string[]) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
    const child = spawn(process.execPath, [cli, ...args], {
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

let tracker: RunningTracker
const scope = Effect.runSync(Scope.make())
beforeAll(async () => {
  tracker = await Effect.runPromise(
    serveTracker({ port: 0, token: "t0ken", jobs: await loadJobs(jobs) }).pipe(Scope.provide(scope))
  )
})
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

const freePort = () =>
  new Promise<number>((done) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => done(port))
    })
  })

describe("the taskfold command", () => {
  it("--help on each verb describes it and exits 0", async () => {
    for (const verb of ["run", "serve", "worker", "submit", "status", "list", "kill", "credential"]) {
      const { code, stdout } = await taskfold(verb, "--help")
      expect(code).toBe(0)
      expect(stdout).toMatch(new RegExp(`^Usage: taskfold ${verb}`))
    }
    const top = await taskfold("--help")
    expect(top.code).toBe(0)
    expect(top.stdout).toContain("Commands:")
  })

  it("R-WIRE-4 credential prints the worker's credential under the secret; a worker given one registers as that worker", async () => {
    const printed = await taskfold("credential", "--worker", "w-7", "--token", "t0ken")
    expect(printed.code).toBe(0)
    const credential = printed.stdout.trim()
    expect(credential).toBe(await workerCredential("t0ken", "w-7"))
    const missing = await taskfold("credential", "--token", "t0ken")
    expect(missing.code).toBe(2)
    oneLine(missing.stderr, /--worker is required/)
    // Another id than the credential's is refused before anything starts.
    const other = await taskfold(
      "worker",
      "--tracker",
      tracker.url,
      "--token",
      credential,
      "--jobs",
      jobs,
      "--id",
      "w-8"
    )
    expect(other.code).toBe(2)
    oneLine(other.stderr, /the credential is worker w-7's/)
  })

  it("wrong flags, a missing argument or an unknown verb give one line and exit 2", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["bogus"], /unknown command "bogus"/],
      [["run", jobs, "--bogus"], /Unknown option '--bogus'/],
      [["run"], /a job module is required/],
      [["run", jobs, "--workers", "zero", "--job", "squares"], /--workers must be an integer/],
      [["run", jobs, "--job", "squares", "--params", "{"], /--params is not valid JSON/],
      [["run", jobs], /exports several jobs \(.*squares.*\): choose one with --job/],
      [["serve", "--port", "0", "--token", "x"], /--jobs is required/],
      [["serve", "--port", "70000", "--token", "x", "--jobs", jobs], /--port must be a port number/],
      [["serve", "--port", "0", "--jobs", jobs], /--token \(or the TASKFOLD_TOKEN environment variable\) is required/],
      [["worker", "--tracker", "nope", "--token", "x", "--jobs", jobs], /--tracker must be a URL/],
      [
        ["serve", "--port", "0", "--token", "short", "--jobs", jobs],
        /--token: the secret must be at least 16 characters/
      ],
      [
        ["submit", "squares", "--tracker", "http://127.0.0.1:1", "--token", "x", "--config", "[1]"],
        /--config must be a JSON object/
      ],
      [["status", "--tracker", "http://127.0.0.1:1", "--token", "x"], /an instance id is required/]
    ]
    for (const [args, pattern] of cases) {
      const { code, stderr } = await taskfold(...args)
      expect(code, args.join(" ")).toBe(2)
      oneLine(stderr, pattern)
    }
  })

  it("a missing job, a module without jobs, an unreachable tracker or a refused request give one line and exit 1", async () => {
    const port = await freePort()
    const cases: Array<[string[], RegExp]> = [
      [["run", join(fixtures, "missing.ts")], /no job module or folder at .*missing\.ts/],
      [["run", join(fixtures, "no-jobs.ts")], /no job definition \(defineJob\) is exported/],
      [["run", jobs, "--job", "nope"], /exports no job named "nope"/],
      [
        ["submit", "squares", "--tracker", `http://127.0.0.1:${port}`, "--token", "x"],
        /cannot reach the tracker at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/
      ],
      [["status", "some-id", "--tracker", `http://127.0.0.1:${port}`, "--token", "x"], /cannot reach the tracker/],
      [
        ["worker", "--tracker", `http://127.0.0.1:${port}`, "--token", LONG_SECRET, "--jobs", jobs],
        /cannot reach the tracker/
      ],
      [["serve", "--port", String(tracker.port), "--token", LONG_SECRET, "--jobs", jobs], /port \d+ is in use/],
      [
        ["submit", "squares", "--tracker", tracker.url, "--token", "wrong"],
        /refused the request: a valid bearer token is required/
      ],
      [
        ["submit", "nope", "--tracker", tracker.url, "--token", "t0ken"],
        /unknown job "nope"; this tracker knows ("squares", "broken"|"broken", "squares")/
      ],
      [["status", "nope", "--tracker", tracker.url, "--token", "t0ken"], /no instance nope/]
    ]
    for (const [args, pattern] of cases) {
      const { code, stderr } = await taskfold(...args)
      expect(code, args.join(" ")).toBe(1)
      oneLine(stderr, pattern)
    }
  })

  it("run prints the outcome as one JSON line and exits 0 on success, 1 on failure", async () => {
    const ok = await taskfold("run", jobs, "--job", "squares", "--params", '{"n":100}', "--workers", "2")
    expect(ok.code).toBe(0)
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, result: 328_350 })
    expect(ok.stderr).toMatch(/progress: .*square 100\/100/)
    const failed = await taskfold("run", jobs, "--job", "broken")
    expect(failed.code).toBe(1)
    expect(JSON.parse(failed.stdout)).toMatchObject({ ok: false, result: expect.stringContaining("broken on purpose") })
  })

  it("R-FIN-8 run names every failed task with its error, on stderr and in the JSON line, never only a count", async () => {
    const failed = await taskfold("run", jobs, "--job", "some-fail", "--workers", "2", "--threads", "0")
    expect(failed.code).toBe(1)
    const line = JSON.parse(failed.stdout) as {
      ok: boolean
      counts: unknown
      errors: Array<{ taskId: string; name: string; error: { tag: string; message: string } }>
    }
    expect(line.ok).toBe(false)
    expect(line.counts).toEqual({ created: 11, succeeded: 9, failed: 2 })
    expect(line.errors.map((error) => [error.taskId, error.name, error.error.tag, error.error.message]).sort()).toEqual(
      [
        ["0.4", "part", "RangeError", "part 3 is out of range"],
        ["0.8", "part", "RangeError", "part 7 is out of range"]
      ]
    )
    expect(failed.stderr).toMatch(/failed: 11 tasks, 9 succeeded, 2 failed/)
    expect(failed.stderr).toMatch(/task 0\.4 \(part, attempt 0\): RangeError: part 3 is out of range/)
    expect(failed.stderr).toMatch(/task 0\.8 \(part, attempt 0\): RangeError: part 7 is out of range/)
  })

  it("submit --wait against a server prints the outcome line; status answers after the instance finished", async () => {
    const waited = await taskfold(
      "submit",
      "squares",
      "--tracker",
      tracker.url,
      "--token",
      "t0ken",
      "--params",
      '{"n":20}',
      "--id",
      "cli-1",
      "--wait"
    )
    expect(waited.code).toBe(0)
    expect(JSON.parse(waited.stdout)).toMatchObject({ instanceId: "cli-1", ok: true, result: 2_470 })
    const shown = await taskfold("status", "cli-1", "--tracker", tracker.url, "--token", "t0ken")
    expect(shown.code).toBe(0)
    expect(shown.stdout).toMatch(/instance cli-1: succeeded/)
    expect(shown.stdout).toMatch(/square\s+20\s+0\s+0\s+0\s+20\s+0/)
    const json = await taskfold("status", "cli-1", "--tracker", tracker.url, "--token", "t0ken", "--json")
    expect(JSON.parse(json.stdout)).toMatchObject({ instanceId: "cli-1", outcome: { ok: true, result: "2470" } })
    const failed = await taskfold("submit", "broken", "--tracker", tracker.url, "--token", "t0ken", "--wait")
    expect(failed.code).toBe(1)
    expect(JSON.parse(failed.stdout)).toMatchObject({ ok: false })
    const plain = await taskfold("submit", "squares", "--tracker", tracker.url, "--token", "t0ken")
    expect(plain.code).toBe(0)
    expect(plain.stdout.trim()).toMatch(/^squares-[0-9a-f-]{36}$/)
  })

  it("status --watch follows an instance to its end, plain lines without escape codes off a terminal; the exit code follows the outcome", async () => {
    const auth = ["--tracker", tracker.url, "--token", "t0ken"]
    await taskfold("submit", "squares", ...auth, "--params", '{"n":2000}', "--id", "cli-watch")
    const watched = await taskfold("status", "cli-watch", ...auth, "--watch")
    expect(watched.code).toBe(0)
    expect(watched.stdout).toMatch(/instance cli-watch: succeeded/)
    expect(watched.stderr).toMatch(/square/)
    expect(watched.stderr.includes("\u001b")).toBe(false)
    await taskfold("submit", "broken", ...auth, "--id", "cli-watch-broken")
    const failed = await taskfold("status", "cli-watch-broken", ...auth, "--watch", "--json")
    expect(failed.code).toBe(1)
    expect(JSON.parse(failed.stdout)).toMatchObject({ instanceId: "cli-watch-broken", outcome: { ok: false } })
  })

  it("list shows running and finished instances, filtered by job and state; kill ends a running one with the reason", async () => {
    const auth = ["--tracker", tracker.url, "--token", "t0ken"]
    expect((await taskfold("submit", "waits", ...auth, "--id", "cli-wait")).code).toBe(0)
    const shown = await taskfold("list", ...auth)
    expect(shown.code).toBe(0)
    expect(shown.stdout).toMatch(/cli-wait\s+running\s+waits/)
    const running = JSON.parse((await taskfold("list", ...auth, "--state", "running", "--json")).stdout)
    expect(running).toContainEqual({ instanceId: "cli-wait", job: "waits", state: "running" })
    const killed = await taskfold("kill", "cli-wait", ...auth, "--reason", "enough of it")
    expect(killed.code).toBe(0)
    let status: { outcome: { ok: boolean; result: string } | null } = { outcome: null }
    for (let i = 0; i < 100 && status.outcome === null; i++) {
      status = JSON.parse((await taskfold("status", "cli-wait", ...auth, "--json")).stdout)
      if (status.outcome === null) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(status.outcome).toMatchObject({ ok: false })
    expect(status.outcome?.result).toMatch(/enough of it/)
    const failed = JSON.parse((await taskfold("list", ...auth, "--job", "waits", "--state", "failed", "--json")).stdout)
    expect(failed).toContainEqual({ instanceId: "cli-wait", job: "waits", state: "failed" })
    expect(JSON.parse((await taskfold("list", ...auth, "--job", "squares", "--json")).stdout)).not.toContainEqual(
      expect.objectContaining({ instanceId: "cli-wait" })
    )
    const unknown = await taskfold("kill", "no-such", ...auth)
    expect(unknown.code).toBe(1)
    oneLine(unknown.stderr, /no-such/)
  })
})
