import { ConfigError, defineJob, runJob, startJob } from "@taskfold/core"
import {
  TaskKind,
  TaskStatus,
  type Settled,
  type StoredResult,
  type TaskCalls,
  type TaskRun
} from "@taskfold/core/adapter"
import { Effect } from "effect"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { threadId } from "node:worker_threads"
import { afterEach, describe, expect, it } from "vitest"
import { runJobModule, threadPool, type ThreadPool } from "../src/index.ts"

/** Real worker threads running the fixture job `probe`; each case says what it checks of R-DISP-10. */
const fixture = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "thread-jobs.ts")

const pools: ThreadPool[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.close()))
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const poolOf = (options: Omit<Parameters<typeof threadPool>[0], "modules"> = {}): ThreadPool => {
  const pool = threadPool({ modules: [fixture], ...options })
  pools.push(pool)
  return pool
}

const taskRun = (name: string, body: unknown = null, overrides: Partial<TaskRun["task"]> = {}): TaskRun => ({
  instanceId: "inst-1",
  job: "probe",
  task: {
    id: `0.${name}`,
    name,
    kind: TaskKind.Sub,
    body: body instanceof Uint8Array ? (body as Uint8Array<ArrayBuffer>) : JSON.stringify(body),
    attempt: 2,
    ...overrides
  },
  params: JSON.stringify({ p: 1 }),
  context: { c: "x" },
  maxResultBytes: 1024 * 1024
})

/** TaskCalls that answer at once and remember what they were asked; `started` resolves on the first appendContext. */
const fakeCalls = (overrides: Partial<TaskCalls> = {}) => {
  const asked: Array<{ method: string; args: unknown[] }> = []
  let started: (entries: Record<string, unknown>) => void = () => {}
  const startedPromise = new Promise<Record<string, unknown>>((resolve) => (started = resolve))
  const calls: TaskCalls = {
    map: async (items, name) => {
      asked.push({ method: "map", args: [items, name] })
      return items.length
    },
    appendContext: async (entries) => {
      asked.push({ method: "appendContext", args: [entries] })
      started(entries)
      return true
    },
    readResults: async (afterSeq, limit) => {
      asked.push({ method: "readResults", args: [afterSeq, limit] })
      return []
    },
    ...overrides
  }
  return { calls, asked, started: startedPromise }
}

const never = new AbortController().signal

const ok = (settled: Settled): unknown => {
  if (!settled.ok) throw new Error(`settled with an error: ${JSON.stringify(settled.error)}`)
  return JSON.parse(settled.result)
}

describe("threadPool", () => {
  it("R-DISP-10 a task runs on another thread with the same view as in-thread: body, attempt, params, context", async () => {
    const pool = poolOf({ threads: 1 })
    const { calls } = fakeCalls()
    const result = ok(await pool.run(taskRun("echo", { n: 7 }), calls, never)) as Record<string, unknown>
    expect(result).toEqual({
      threadId: expect.any(Number),
      id: "0.echo",
      attempt: 2,
      isRoot: false,
      instanceId: "inst-1",
      params: { p: 1 },
      context: { c: "x" },
      body: { n: 7 }
    })
    expect(result["threadId"]).not.toBe(threadId)
    const root = ok(await pool.run(taskRun("echo", { p: 1 }, { kind: TaskKind.Root }), calls, never))
    expect(root).toMatchObject({ isRoot: true, body: { p: 1 } })
  })

  it("R-DISP-10 a processor's error and a non-JSON body settle as task errors, like in-thread", async () => {
    const pool = poolOf({ threads: 1 })
    const failed = await pool.run(taskRun("fail"), fakeCalls().calls, never)
    expect(failed).toMatchObject({ ok: false, error: { tag: "PurposeError", message: "failed on purpose" } })
    const bad = await pool.run(
      { ...taskRun("echo"), task: { ...taskRun("echo").task, body: "{not json" } },
      fakeCalls().calls,
      never
    )
    expect(bad.ok).toBe(false)
    const unknown = await pool.run({ ...taskRun("echo"), job: "nope" }, fakeCalls().calls, never)
    expect(unknown).toMatchObject({ ok: false, error: { tag: "UnknownJob" } })
    const odd = await pool.run(taskRun("throw-uncloneable"), fakeCalls().calls, never)
    expect(odd).toMatchObject({
      ok: false,
      error: { message: expect.stringMatching(/the error Odd: odd cannot leave the worker thread/) }
    })
    // The thread lives on.
    expect(ok(await pool.run(taskRun("echo", 2), fakeCalls().calls, never))).toMatchObject({ body: 2 })
  })

  it("R-DISP-10 map from a thread is made on the main thread through TaskCalls, bytes items included", async () => {
    const pool = poolOf({ threads: 1 })
    const { calls, asked } = fakeCalls()
    expect(ok(await pool.run(taskRun("map"), calls, never))).toMatchObject({ created: 3 })
    expect(asked).toEqual([{ method: "map", args: [[1, "two", new Uint8Array([3, 4])], "child"] }])
  })

  it("R-DISP-10 a refused map call rejects in the thread with the error's name, message and reason", async () => {
    const pool = poolOf({ threads: 1 })
    const refused = Object.assign(new Error("too many waiting tasks"), {
      name: "RejectedError",
      reason: "instance-finished"
    })
    const { calls } = fakeCalls({ map: () => Promise.reject(refused) })
    expect(ok(await pool.run(taskRun("map-refused"), calls, never))).toEqual({
      name: "RejectedError",
      message: "too many waiting tasks",
      reason: "instance-finished"
    })
  })

  it("R-DISP-10 appendContext from a thread reaches TaskCalls and its answer comes back", async () => {
    const pool = poolOf({ threads: 1 })
    const { calls, asked } = fakeCalls({ appendContext: async () => false })
    expect(ok(await pool.run(taskRun("append"), calls, never))).toMatchObject({ appended: false })
    const other = fakeCalls()
    expect(ok(await pool.run(taskRun("append"), other.calls, never))).toMatchObject({ appended: true })
    expect(other.asked).toEqual([{ method: "appendContext", args: [{ seen: "0.append" }] }])
    expect(asked).toEqual([])
  })

  it("R-DISP-10 R-FIN-3 reduce on a thread reads every page of results through readResults", async () => {
    const pool = poolOf({ threads: 1 })
    const rows: StoredResult[] = Array.from({ length: 2_500 }, (_, i) => ({
      id: `0.${i}`,
      seq: i + 1,
      name: "n",
      status: i === 7 ? TaskStatus.Failed : TaskStatus.Succeeded,
      result: i === 7 ? null : String(i),
      resultCut: false,
      lastError: i === 7 ? JSON.stringify({ tag: "Error", message: "x" }) : null
    }))
    const { calls, asked } = fakeCalls({
      readResults: async (afterSeq, limit) => {
        asked.push({ method: "readResults", args: [afterSeq, limit] })
        return rows.filter((row) => row.seq > afterSeq).slice(0, limit)
      }
    })
    const final = taskRun("FINAL", null, { id: "0.F", kind: TaskKind.Final, body: "null" })
    const result = ok(await pool.run(final, calls, never))
    expect(result).toMatchObject({ count: 2_500, failed: 1, sum: (2_499 * 2_500) / 2 - 7, params: { p: 1 } })
    expect(asked.map((call) => call.args[0])).toEqual([-1, 1_000, 2_000])
  })

  it("R-DISP-10 an abort of the worker's signal aborts the task's own signal in the thread", async () => {
    const pool = poolOf({ threads: 1 })
    const { calls, started } = fakeCalls()
    const controller = new AbortController()
    const running = pool.run(taskRun("until-aborted"), calls, controller.signal)
    await started
    controller.abort("killed by the test")
    expect(ok(await running)).toMatchObject({ aborted: "killed by the test" })
    // Already aborted before it starts: its signal is aborted from the start.
    const again = fakeCalls()
    expect(ok(await pool.run(taskRun("until-aborted"), again.calls, controller.signal))).toMatchObject({
      aborted: "killed by the test"
    })
  })

  it("R-DISP-10 a kill of the instance reaches the processor on its thread (runJob with the pool)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "taskfold-threads-"))
    dirs.push(dir)
    const file = join(dir, "aborted")
    const pool = poolOf({ threads: 2 })
    const named = defineJob({
      name: "wait-for-kill",
      kind: "standalone",
      config: { taskRetries: 0 },
      process: () => null
    })
    const outcome = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          // Processors run on the pool, which imports the fixture's job of that name; this definition only names it.
          const handle = yield* startJob(named, { executor: pool, workers: 1, params: { file } })
          yield* Effect.promise(async () => {
            while (pool.stats().running === 0) await new Promise((resolve) => setTimeout(resolve, 10))
          })
          yield* handle.kill("stopped by the test")
          const result = yield* handle.result
          // Before the scope closes (which would abort the task too, as "worker closed").
          yield* Effect.promise(async () => {
            for (let i = 0; i < 500 && !existsSync(file); i++) await new Promise((resolve) => setTimeout(resolve, 10))
          })
          return result
        })
      )
    )
    expect(outcome.ok).toBe(false)
    expect(readFileSync(file, "utf8")).toContain("stopped by the test")
  })

  it("R-DISP-10 a thread that calls process.exit fails only its own tasks and is replaced", async () => {
    const pool = poolOf({ threads: 2 })
    // The first task waits on thread A; the second goes to the least busy thread, B, and ends it.
    const waiting = pool.run(taskRun("wait", { ms: 1_500 }), fakeCalls().calls, never)
    const crash = fakeCalls()
    const crashing = pool.run(taskRun("exit"), crash.calls, never)
    const crashedOn = (await crash.started)["started"]
    const crashed = await crashing
    expect(crashed).toMatchObject({ ok: false, error: { tag: "TaskfoldError", reason: "thread-crashed" } })
    expect(crashed.ok ? "" : crashed.error.message).toContain("exited with code 3")
    const survivor = ok(await waiting) as { threadId: number }
    expect(survivor.threadId).not.toBe(crashedOn)
    expect(pool.stats().threads).toBe(2)
    // The replacement runs tasks: two at once land on two threads, neither the dead one.
    const after = await Promise.all([1, 2].map(() => pool.run(taskRun("wait", { ms: 200 }), fakeCalls().calls, never)))
    const ids = after.map((settled) => (ok(settled) as { threadId: number }).threadId)
    expect(new Set(ids).size).toBe(2)
    expect(ids).not.toContain(crashedOn)
  })

  it("R-DISP-10 an uncaught error in a thread fails every task on it with that error, and the thread is replaced", async () => {
    const pool = poolOf({ threads: 1 })
    const first = pool.run(taskRun("wait", { ms: 5_000 }), fakeCalls().calls, never)
    const thrower = fakeCalls()
    const second = pool.run(taskRun("throw-later"), thrower.calls, never)
    for (const settled of await Promise.all([first, second])) {
      expect(settled).toMatchObject({ ok: false, error: { reason: "thread-crashed" } })
      expect(settled.ok ? "" : settled.error.message).toContain("boom outside any task")
    }
    expect(ok(await pool.run(taskRun("echo", 1), fakeCalls().calls, never))).toMatchObject({ body: 1 })
  })

  it("R-DISP-10 many async tasks run at once on one thread; new tasks go to the least busy thread", async () => {
    const one = poolOf({ threads: 1 })
    const started = performance.now()
    const settled = await Promise.all(
      Array.from({ length: 50 }, () => one.run(taskRun("wait", { ms: 300 }), fakeCalls().calls, never))
    )
    expect(settled.every((s) => s.ok)).toBe(true)
    expect(performance.now() - started).toBeLessThan(5_000)
    const two = poolOf({ threads: 2 })
    await two.ready()
    expect(two.stats()).toEqual({ threads: 2, running: 0 })
    const spread = await Promise.all(
      Array.from({ length: 10 }, () => two.run(taskRun("wait", { ms: 100 }), fakeCalls().calls, never))
    )
    const perThread = new Map<number, number>()
    for (const s of spread) {
      const id = (ok(s) as { threadId: number }).threadId
      perThread.set(id, (perThread.get(id) ?? 0) + 1)
    }
    expect([...perThread.values()]).toEqual([5, 5])
  })

  it("R-DISP-10 Uint8Array bodies move to the thread when transferBodies is on, and are copied otherwise", async () => {
    const copied = new Uint8Array([1, 2, 3])
    const copying = poolOf({ threads: 1 })
    expect(ok(await copying.run(taskRun("echo", copied), fakeCalls().calls, never))).toMatchObject({
      body: { bytes: [1, 2, 3] }
    })
    expect(copied.byteLength).toBe(3)
    const moved = new Uint8Array([4, 5])
    const moving = poolOf({ threads: 1, transferBodies: true })
    expect(ok(await moving.run(taskRun("echo", moved), fakeCalls().calls, never))).toMatchObject({
      body: { bytes: [4, 5] }
    })
    expect(moved.byteLength).toBe(0)
    // A view on part of a larger buffer is copied: moving the buffer would take what is not the body's.
    const part = new Uint8Array([9, 8, 7, 6]).subarray(1, 3)
    expect(ok(await moving.run(taskRun("echo", part), fakeCalls().calls, never))).toMatchObject({
      body: { bytes: [8, 7] }
    })
    expect(part.byteLength).toBe(2)
  })

  it("R-DISP-10 a busy loop on a thread leaves this thread's event loop free", async () => {
    const pool = poolOf({ threads: 1 })
    let longestGap = 0
    let last = performance.now()
    const ticker = setInterval(() => {
      const now = performance.now()
      longestGap = Math.max(longestGap, now - last)
      last = now
    }, 20)
    try {
      const started = performance.now()
      ok(await pool.run(taskRun("busy", { ms: 1_500 }), fakeCalls().calls, never))
      expect(performance.now() - started).toBeGreaterThanOrEqual(1_500)
    } finally {
      clearInterval(ticker)
    }
    expect(longestGap).toBeLessThan(500)
  })

  it("R-DISP-10 close fails the tasks still running and refuses new ones", async () => {
    const pool = poolOf({ threads: 1 })
    const running = pool.run(taskRun("wait", { ms: 10_000 }), fakeCalls().calls, never)
    await pool.close()
    expect(await running).toMatchObject({ ok: false, error: { reason: "pool-closed" } })
    expect(await pool.run(taskRun("echo"), fakeCalls().calls, never)).toMatchObject({
      ok: false,
      error: { reason: "pool-closed" }
    })
  })

  it("R-DISP-10 threads must be a whole number from 1 to 1024 and modules non-empty: ConfigError otherwise", () => {
    for (const threads of [0, -1, 1.5, 1_025, Number.NaN, "2" as unknown as number]) {
      let thrown: unknown
      try {
        threadPool({ modules: [fixture], threads })
      } catch (error) {
        thrown = error
      }
      expect(thrown, String(threads)).toBeInstanceOf(ConfigError)
      expect(thrown).toMatchObject({ reason: "invalid-config" })
    }
    expect(() => threadPool({ modules: [] })).toThrow(ConfigError)
    expect(() => threadPool({ modules: [""] })).toThrow(ConfigError)
  })

  it("R-DISP-10 modules may be given as file URLs; one that cannot load fails its tasks with the reason", async () => {
    const viaUrl = threadPool({ modules: [pathToFileURL(fixture).href], threads: 1 })
    pools.push(viaUrl)
    expect(ok(await viaUrl.run(taskRun("echo", 5), fakeCalls().calls, never))).toMatchObject({ body: 5 })
    const missing = threadPool({ modules: [join(dirname(fixture), "missing.ts")], threads: 1 })
    pools.push(missing)
    expect(await missing.run(taskRun("echo"), fakeCalls().calls, never)).toMatchObject({
      ok: false,
      error: { tag: "JobLoadError" }
    })
  })
})

describe("runJobModule", () => {
  it("R-DISP-10 runs a module's job with runJob on a thread pool and returns runJob's result", async () => {
    const examples = join(dirname(fileURLToPath(import.meta.url)), "../../../examples/primes.ts")
    const result = await runJobModule(examples, { threads: 2, params: { upTo: 100_000, ranges: 3, blocksPerRange: 4 } })
    expect(result).toMatchObject({ ok: true, result: { primes: 9_592, blocks: 12 } })
    await expect(runJobModule(fixture, { job: "nope" })).rejects.toThrow(/exports no job named "nope"/)
    await expect(runJobModule(fixture, { job: "probe", threads: 0 })).rejects.toThrow(ConfigError)
    // The in-thread run gives the same.
    const { primeCount } = await import(pathToFileURL(examples).href)
    expect((await runJob(primeCount, { params: { upTo: 100_000, ranges: 3, blocksPerRange: 4 } })).result).toEqual(
      result.result
    )
  })
})
