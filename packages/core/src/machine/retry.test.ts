import { describe, expect, it } from "vitest"
import type { JobConfig } from "../model/config.ts"
import type { JobKind } from "../model/instance.ts"
import { TaskStatus } from "../model/status.ts"
import { Driver, LOCAL, sentTasks, sentTo } from "./test-driver.ts"

const started = (overrides: Partial<JobConfig> = {}, kind: JobKind = "mapReduce", seed = 7) => {
  const d = Driver.create({ kind, seed, config: { localWorker: "exclude", progressInterval: 1_000_000, ...overrides } })
  d.startRoot()
  return d
}

/** Fails "0.1" on A at times t0, t1, ... and returns the dueAt of each retry. */
const retryDelays = (d: Driver, times: number[]): number[] =>
  times.map((t) => {
    d.heartbeat("A", {}, t)
    // the retry of the previous failure is due by now
    d.running("A", "0.1", t)
    d.fail("A", "0.1", "boom", t)
    return d.live("0.1").dueAt! - t
  })

describe("retry", () => {
  it("R-RETRY-1 a Failed report while failures < taskRetries goes back to Waiting, not before the backoff", () => {
    const d = started({ retryBackoff: { kind: "fixed", ms: 2_000 } })
    d.heartbeat("A")
    d.map(LOCAL, "0", "child", ["1"])
    d.running("A", "0.1", 100)
    d.fail("A", "0.1", "division by zero", 100)
    expect(d.row("0.1")).toMatchObject({
      status: TaskStatus.Waiting,
      worker: null,
      attempt: 1,
      failures: 1,
      dueAt: 2_100,
      result: null
    })
    expect(d.error("0.1")).toEqual({ tag: "Error", message: "division by zero" })
    expect(d.last.sends).toEqual([])
    expect(d.last.wakeAt).toBe(2_100)
    d.heartbeat("A", {}, 2_099)
    expect(d.last.sends).toEqual([])
    const out = d.step([], 2_100)
    expect(sentTasks(out).map((task) => [task.id, task.attempt])).toEqual([["0.1", 1]])
  })

  it("R-RETRY-1 once failures reach taskRetries (default 1) the task fails with its error kept", () => {
    const d = started({ retryBackoff: { kind: "fixed", ms: 0 } })
    expect(d.state.config.taskRetries).toBe(1)
    d.heartbeat("A")
    d.map(LOCAL, "0", "child", ["1"])
    d.fail("A", "0.1", "first")
    expect(d.live("0.1")).toMatchObject({ failures: 1, attempt: 1, status: TaskStatus.Dispatched })
    d.fail("A", "0.1", "second")
    expect(d.state.tasks.has("0.1")).toBe(false)
    expect(d.row("0.1")).toMatchObject({ status: TaskStatus.Failed, failures: 1, attempt: 1, result: null })
    expect(d.error("0.1")).toEqual({ tag: "Error", message: "second" })
    expect(d.state.runs.get(0)!.failed).toBe(1)
  })

  it("R-RETRY-1 exponential backoff doubles up to maxMs", () => {
    const d = started({ taskRetries: 5, retryBackoff: { kind: "exponential", baseMs: 1_000, maxMs: 5_000, jitter: 0 } })
    d.heartbeat("A")
    d.map(LOCAL, "0", "child", ["1"])
    expect(retryDelays(d, [0, 10_000, 20_000, 30_000, 40_000])).toEqual([1_000, 2_000, 4_000, 5_000, 5_000])
  })

  it("R-RETRY-1 jitter shortens each delay by at most its share, the same for the same seed", () => {
    const run = (seed: number) => {
      const d = started(
        { taskRetries: 3, retryBackoff: { kind: "exponential", baseMs: 1_000, maxMs: 60_000, jitter: 0.5 } },
        "mapReduce",
        seed
      )
      d.heartbeat("A")
      d.map(LOCAL, "0", "child", ["1"])
      return retryDelays(d, [0, 10_000, 20_000])
    }
    const delays = run(42)
    expect(run(42)).toEqual(delays)
    const [first, second, third] = delays as [number, number, number]
    expect(first).toBeGreaterThanOrEqual(500)
    expect(first).toBeLessThanOrEqual(1_000)
    expect(second).toBeGreaterThanOrEqual(1_000)
    expect(second).toBeLessThanOrEqual(2_000)
    expect(third).toBeGreaterThanOrEqual(2_000)
    expect(third).toBeLessThanOrEqual(4_000)
    expect(delays).not.toEqual([1_000, 2_000, 4_000])
  })

  it("R-RETRY-2 a retried sub-task loses its worker", () => {
    const d = started({ retryBackoff: { kind: "fixed", ms: 0 } })
    d.heartbeat("A")
    d.heartbeat("B")
    d.map(LOCAL, "0", "child", ["1"])
    expect(sentTo(d.last)).toEqual({ A: ["0.1"] })
    d.fail("A", "0.1")
    expect(d.last.write!.updates.find((u) => u.id === "0.1")).toMatchObject({ worker: "B", attempt: 1 })
    expect(sentTo(d.last)).toEqual({ B: ["0.1"] })
  })

  it("R-RETRY-2 a retried root goes back to the local worker", () => {
    const d = started({ localWorker: "include", retryBackoff: { kind: "fixed", ms: 1_000 } })
    d.heartbeat("A", { slots: 100 })
    d.fail(LOCAL, "0", "boom", 10)
    expect(d.live("0")).toMatchObject({ status: TaskStatus.Waiting, pinnedTo: LOCAL })
    const out = d.step([], 1_010)
    expect(sentTo(out)).toEqual({ [LOCAL]: ["0"] })
  })

  it("R-RETRY-2 a retried final task goes back to the local worker", () => {
    const d = started({ retryBackoff: { kind: "fixed", ms: 0 } })
    d.heartbeat("A", { slots: 100 })
    d.succeed(LOCAL, "0")
    expect(sentTo(d.last)).toEqual({ [LOCAL]: ["0.F"] })
    d.fail(LOCAL, "0.F")
    expect(sentTo(d.last)).toEqual({ [LOCAL]: ["0.F"] })
    expect(d.live("0.F").attempt).toBe(1)
  })

  it("R-RETRY-2 a retried broadcast task goes back to its own worker", () => {
    const d = started({ localWorker: "include", retryBackoff: { kind: "fixed", ms: 0 } }, "broadcast")
    d.heartbeat("A", { slots: 100 })
    d.heartbeat("B", { slots: 100 })
    d.succeed(LOCAL, "0")
    expect(sentTo(d.last)).toEqual({ [LOCAL]: ["0.1"], A: ["0.2"], B: ["0.3"] })
    d.fail("A", "0.2")
    expect(sentTo(d.last)).toEqual({ A: ["0.2"] })
    expect(d.live("0.2")).toMatchObject({ attempt: 1, pinnedTo: "A" })
  })

  it("R-RETRY-3 a result longer than maxResultBytes fails that task alone with result-too-large, never cut, never retried", () => {
    const d = started({ maxResultBytes: 10, taskRetries: 3 })
    d.heartbeat("A")
    d.map(LOCAL, "0", "child", Driver.items(4))
    // one report carries all four results; only the one too long fails
    d.report("A", [
      { taskId: "0.1", attempt: 0, status: TaskStatus.Succeeded, result: `"${"x".repeat(20)}"` },
      { taskId: "0.2", attempt: 0, status: TaskStatus.Succeeded, result: '"short"' },
      // bytes count, not characters: 7 characters, 12 bytes
      { taskId: "0.3", attempt: 0, status: TaskStatus.Succeeded, result: `"ééééé"` },
      // exactly at the limit: 1 + 4 × 2 + 1 = 10 bytes
      { taskId: "0.4", attempt: 0, status: TaskStatus.Succeeded, result: `"éééé"` }
    ])
    expect(d.row("0.1")).toMatchObject({
      status: TaskStatus.Failed,
      result: null,
      resultCut: false,
      failures: 0,
      attempt: 0
    })
    expect(d.error("0.1")).toEqual({
      tag: "TaskfoldError",
      reason: "result-too-large",
      message: "the result of task 0.1 is 22 bytes of UTF-8; maxResultBytes is 10"
    })
    expect(d.row("0.2")).toMatchObject({
      status: TaskStatus.Succeeded,
      result: '"short"',
      resultCut: false,
      lastError: null
    })
    expect(d.row("0.3")).toMatchObject({ status: TaskStatus.Failed, result: null })
    expect(d.error("0.3")!.message).toContain("12 bytes")
    expect(d.row("0.4")).toMatchObject({ status: TaskStatus.Succeeded, result: `"éééé"` })
    expect(d.state.tasks.has("0.1")).toBe(false)
    expect(d.state.runs.get(0)).toMatchObject({ succeeded: 2, failed: 2 })
  })

  it("R-RETRY-3 the default maxResultBytes is 1 MiB of UTF-8", () => {
    const d = started()
    expect(d.state.config.maxResultBytes).toBe(1024 * 1024)
    d.heartbeat("A")
    d.map(LOCAL, "0", "child", Driver.items(2))
    d.succeed("A", "0.1", "1".repeat(1024 * 1024))
    expect(d.row("0.1")).toMatchObject({ status: TaskStatus.Succeeded, resultCut: false })
    expect(d.row("0.1").result).toHaveLength(1024 * 1024)
    d.succeed("A", "0.2", "1".repeat(1024 * 1024 + 1))
    expect(d.row("0.2")).toMatchObject({ status: TaskStatus.Failed, result: null })
    expect(d.error("0.2")!.reason).toBe("result-too-large")
  })

  it("R-RETRY-3 a map job keeps no results at all, and checks no size", () => {
    const d = started({ maxResultBytes: 4 }, "map")
    d.heartbeat("A")
    d.map(LOCAL, "0", "child", Driver.items(1))
    d.succeed("A", "0.1", '"kept? much longer than the limit"')
    expect(d.row("0.1")).toMatchObject({ status: TaskStatus.Succeeded, result: null, resultCut: false })
    d.succeed(LOCAL, "0", '"root, also longer than the limit"')
    expect(d.row("0")).toMatchObject({ status: TaskStatus.Succeeded, result: null })
    expect(d.last.outcome).toMatchObject({ ok: true, result: "total: 2, succeeded: 2, failed: 0" })
    const reduce = started({}, "mapReduce")
    reduce.heartbeat("A")
    reduce.map(LOCAL, "0", "child", Driver.items(1))
    reduce.succeed("A", "0.1", '"kept"')
    expect(reduce.row("0.1").result).toBe('"kept"')
  })

  it("R-RETRY-4 a store failure past its retries fails the instance with the cause and stops the workers", () => {
    const d = started()
    d.heartbeat("A")
    d.map(LOCAL, "0", "child", Driver.items(2))
    const out = d.step([{ _tag: "StoreFailed", cause: "disk full" }], 50)
    expect(out.outcome).toMatchObject({
      ok: false,
      result: "storage failure: disk full",
      finishedAt: 50,
      counts: { created: 3, succeeded: 0 }
    })
    expect(out.write!.instance.outcome).toEqual(out.outcome)
    expect(out.stops.map((stop) => [stop.workerId, stop.message.taskIds, stop.message.reason])).toEqual([
      [LOCAL, null, "storage failure"],
      ["A", null, "storage failure"]
    ])
    // nothing more is dispatched, and a second failure changes nothing
    d.map(LOCAL, "0", "child", Driver.items(1))
    expect(d.last.sends).toEqual([])
    const again = d.step([{ _tag: "StoreFailed", cause: "other" }], 60)
    expect(again.outcome).toBeNull()
    expect(d.state.outcome).toEqual(out.outcome)
  })
})
