import { describe, expect, it } from "vitest"
import type { FrequentSchedule, JobConfig } from "../model/config.ts"
import type { JobKind } from "../model/instance.ts"
import { TaskKind, TaskStatus } from "../model/status.ts"
import { config, Driver, LOCAL, sentTo } from "./test-driver.ts"

const frequent = (schedule: FrequentSchedule, overrides: Partial<JobConfig> = {}, kind: JobKind = "standalone") => {
  const d = Driver.create({
    kind,
    config: { frequent: schedule, progressInterval: 1_000_000_000, ackTimeout: 1_000_000_000, ...overrides }
  })
  d.heartbeat(LOCAL, { slots: 10 }, 0)
  return d
}

describe("frequent jobs", () => {
  it("R-FREQ-1 fixedRate: each period triggers a sub-instance with its own root task <n>", () => {
    const d = frequent({ mode: "fixedRate", everyMs: 1_000 })
    expect(sentTo(d.outputs[0]!)).toEqual({ [LOCAL]: ["1"] })
    expect(d.row("1")).toMatchObject({ name: "ROOT", kind: TaskKind.Root, run: 1 })
    expect(d.last.wakeAt).toBe(1_000)
    d.succeed(LOCAL, "1", '"one"', 900)
    expect(d.state.history).toEqual([{ run: 1, triggeredAt: 0, status: "succeeded", result: '"one"' }])
    expect(d.last.write!.deleteRuns).toEqual([1])
    expect(d.step([], 999).sends).toEqual([])
    expect(sentTo(d.step([], 1_000))).toEqual({ [LOCAL]: ["2"] })
    d.succeed(LOCAL, "2", '"two"', 1_100)
    expect(d.last.wakeAt).toBe(2_000)
    expect(sentTo(d.step([], 2_000))).toEqual({ [LOCAL]: ["3"] })
    expect(d.state.outcome).toBeNull()
  })

  it("R-FREQ-1 fixedDelay: the next trigger comes a gap after the previous sub-instance ends", () => {
    const d = frequent({ mode: "fixedDelay", everyMs: 1_000 })
    expect(sentTo(d.outputs[0]!)).toEqual({ [LOCAL]: ["1"] })
    expect(d.step([], 1_000).sends).toEqual([])
    d.succeed(LOCAL, "1", "1", 1_500)
    expect(d.last.wakeAt).toBe(2_500)
    expect(d.step([], 2_499).sends).toEqual([])
    expect(sentTo(d.step([], 2_500))).toEqual({ [LOCAL]: ["2"] })
  })

  it("R-FREQ-1 sub-instance tasks derive from their root <n>", () => {
    const d = frequent({ mode: "fixedRate", everyMs: 1_000 }, {}, "mapReduce")
    d.running(LOCAL, "1")
    d.map(LOCAL, "1", "child", Driver.items(2))
    expect(d.last.write!.inserts.map((row) => [row.id, row.run])).toEqual([
      ["1.1", 1],
      ["1.2", 1]
    ])
    d.succeed(LOCAL, "1")
    d.succeed(LOCAL, "1.1")
    d.succeed(LOCAL, "1.2")
    expect(sentTo(d.last)).toEqual({ [LOCAL]: ["1.F"] })
  })

  it("R-FREQ-1 periods under 50 ms are refused", () => {
    expect(() => config({ frequent: { mode: "fixedRate", everyMs: 49 } })).toThrow()
    expect(() => config({ frequent: { mode: "fixedDelay", everyMs: 10 } })).toThrow()
    expect(config({ frequent: { mode: "fixedRate", everyMs: 50 } }).frequent).toEqual({
      mode: "fixedRate",
      everyMs: 50
    })
  })

  it("R-FREQ-2 a trigger over maxConcurrentSubInstances is recorded as skipped", () => {
    const d = frequent({ mode: "fixedRate", everyMs: 1_000 })
    expect(d.state.config.maxConcurrentSubInstances).toBe(1)
    const out = d.step([], 1_000)
    expect(out.sends).toEqual([])
    expect(d.state.history).toEqual([
      { run: 2, triggeredAt: 1_000, status: "skipped", result: "too many sub-instances running" }
    ])
    expect(out.write!.instance.history).toEqual(d.state.history)
    d.succeed(LOCAL, "1", "1", 1_500)
    expect(sentTo(d.step([], 2_000))).toEqual({ [LOCAL]: ["3"] })
  })

  it("R-FREQ-2 up to maxConcurrentSubInstances sub-instances run at once", () => {
    const d = frequent({ mode: "fixedRate", everyMs: 1_000 }, { maxConcurrentSubInstances: 2 })
    expect(sentTo(d.step([], 1_000))).toEqual({ [LOCAL]: ["2"] })
    expect(d.step([], 2_000).sends).toEqual([])
    expect(d.state.history.map((record) => [record.run, record.status])).toEqual([[3, "skipped"]])
    expect([...d.state.runs.keys()]).toEqual([1, 2])
  })

  it("R-FREQ-3 tasks of a lost worker fail, with no failover", () => {
    const d = frequent({ mode: "fixedRate", everyMs: 100_000 }, { failover: true, localWorker: "exclude" }, "map")
    d.heartbeat("A", {}, 0)
    d.running(LOCAL, "1")
    d.map(LOCAL, "1", "child", Driver.items(1))
    expect(sentTo(d.last)).toEqual({ A: ["1.1"] })
    const out = d.step([], 15_001)
    expect(out.sends).toEqual([])
    expect(d.row("1.1")).toMatchObject({ status: TaskStatus.Failed, attempt: 0 })
    expect(d.error("1.1")).toEqual({ tag: "TaskfoldError", reason: "worker-lost", message: "worker lost: A" })
  })

  it("R-FREQ-3 a sub-instance over its timeout fails; the instance goes on", () => {
    const d = frequent({ mode: "fixedRate", everyMs: 1_000 }, { instanceTimeout: 500 })
    expect(d.last.wakeAt).toBe(500)
    const out = d.step([], 500)
    expect(out.outcome).toBeNull()
    expect(d.state.history).toEqual([{ run: 1, triggeredAt: 0, status: "failed", result: "timed out" }])
    expect(out.stops).toEqual([
      { workerId: LOCAL, message: { instanceId: "inst-1", taskIds: ["1"], reason: "timed out" } }
    ])
    expect(d.row("1").status).toBe(TaskStatus.Failed)
    expect(d.error("1")).toEqual({ tag: "TaskfoldError", reason: "timed-out", message: "the instance timed out" })
    expect(sentTo(d.step([], 1_000))).toEqual({ [LOCAL]: ["2"] })
  })

  it("R-FREQ-3 the last 10 sub-instances are kept as history", () => {
    const d = frequent({ mode: "fixedRate", everyMs: 1_000 })
    for (let n = 1; n <= 15; n++) {
      if (n > 1) d.step([], (n - 1) * 1_000)
      d.succeed(LOCAL, String(n), String(n), (n - 1) * 1_000 + 10)
    }
    expect(d.state.history.map((record) => record.run)).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 15])
    expect(d.last.write!.instance.history).toHaveLength(10)
  })

  it("R-FREQ-3 skipped triggers count toward the 10 kept", () => {
    const d = frequent({ mode: "fixedRate", everyMs: 1_000 })
    for (let n = 1; n <= 14; n++) d.step([], n * 1_000)
    expect(d.state.history).toHaveLength(10)
    expect(d.state.history.map((record) => [record.run, record.status])).toEqual(
      [6, 7, 8, 9, 10, 11, 12, 13, 14, 15].map((run) => [run, "skipped"])
    )
    d.succeed(LOCAL, "1", "1", 14_500)
    expect(d.state.history.map((record) => record.run)).toEqual([7, 8, 9, 10, 11, 12, 13, 14, 15, 1])
  })

  it("R-FREQ-3 the instance only ends on kill", () => {
    const d = frequent({ mode: "fixedRate", everyMs: 1_000 }, { taskRetries: 0 })
    d.fail(LOCAL, "1", "bad", 10)
    expect(d.state.history).toEqual([{ run: 1, triggeredAt: 0, status: "failed", result: "Error: bad" }])
    expect(d.state.outcome).toBeNull()
    d.step([], 1_000)
    const out = d.step([{ _tag: "Kill", taskId: null, reason: "stop it", reply: d.replyId() }], 1_200)
    // the outcome counts the sub-instance still running (earlier ones are in the history)
    const killed = { tag: "TaskfoldError", reason: "killed", message: "killed: stop it" }
    expect(out.outcome).toEqual({
      ok: false,
      result: "stop it",
      finishedAt: 1_200,
      counts: { created: 1, succeeded: 0, failed: 1 },
      errors: [{ taskId: "2", name: "ROOT", attempt: 0, error: killed }]
    })
    expect(d.row("2").status).toBe(TaskStatus.Failed)
    expect(d.error("2")).toEqual(killed)
    expect(out.wakeAt).toBeNull()
    expect(d.step([], 5_000).sends).toEqual([])
  })
})
