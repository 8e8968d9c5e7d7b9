import { describe, expect, it } from "vitest"
import type { JobConfig } from "../model/config.ts"
import { TaskStatus } from "../model/status.ts"
import { Driver, LOCAL, sentBatches, sentTasks, sentTo } from "./test-driver.ts"

const LANES = [
  { id: "lane-0", slots: 2 },
  { id: "lane-1", slots: 2 }
]

const started = (overrides: Partial<JobConfig> = {}) => {
  const d = Driver.create({
    config: { localWorker: "exclude", progressInterval: 1_000_000_000, ackTimeout: 100_000_000, ...overrides },
    standing: LANES
  })
  d.startRoot()
  return d
}

describe("standing workers", () => {
  it("R-WORK-6 a standing worker gets work without any heartbeat, with the slots the host declared", () => {
    const d = started({ queueAllowance: 0 })
    d.map(LOCAL, "0", "child", Driver.items(5))
    expect(sentTo(d.last)).toEqual({ "lane-0": ["0.1", "0.3"], "lane-1": ["0.2", "0.4"] })
  })

  it("R-WORK-6 an idle standing worker owes no heartbeat: an hour of silence loses nothing and sets no timer", () => {
    const d = started()
    d.step([], 3_600_000)
    expect(d.worker("lane-0")).toMatchObject({ lost: false, available: true })
    expect(d.last.wakeAt).toBe(1_000_000_000)
    d.map(LOCAL, "0", "child", Driver.items(1))
    expect(sentIdsOf(d)).toEqual(["0.1"])
  })

  it("R-WORK-6 while it holds tasks it is judged by heartbeats from the send on: silent for workerTimeout, its tasks run again on fresh capacity", () => {
    const d = started({ queueAllowance: 0 })
    d.step([], 3_600_000)
    d.map(LOCAL, "0", "child", Driver.items(1))
    const [[lane, seq]] = sentBatches(d.last) as [[string, number, string[]]]
    d.delivered(lane, seq)
    expect(d.last.wakeAt).toBe(3_600_000 + d.state.config.workerTimeout + 1)
    const out = d.step([], 3_600_000 + d.state.config.workerTimeout + 1)
    // Lost and readmitted in one step: the task goes back to Waiting (attempt + 1) and out again at once.
    expect(d.worker(lane).lost).toBe(false)
    expect(sentTasks(out).map((task) => [task.id, task.attempt])).toEqual([["0.1", 1]])
    expect(d.row("0.1").failures).toBe(0)
  })

  it("R-WORK-6 heartbeats of the invocation that held the tasks keep them; once lost, its late heartbeats change nothing", () => {
    const d = started({ queueAllowance: 0 })
    d.map(LOCAL, "0", "child", Driver.items(1))
    const [[lane, seq]] = sentBatches(d.last) as [[string, number, string[]]]
    d.delivered(lane, seq)
    d.heartbeat(lane, { slots: 2, freeSlots: 1, incarnation: "00000000a-old", seen: seq, firstSeen: seq }, 10_000)
    d.step([], 20_000)
    expect(d.live("0.1").status).toBe(TaskStatus.Received)
    const lost = d.step([], 10_000 + d.state.config.workerTimeout + 1)
    expect(d.live("0.1").attempt).toBe(1)
    const [[lane2, again]] = sentBatches(lost) as [[string, number, string[]]]
    d.delivered(lane2, again)
    // The old invocation's heartbeat arrives late: it does not adopt the lane back, nor reap the new attempt.
    d.heartbeat(lane, { slots: 2, freeSlots: 2, idle: true, incarnation: "00000000a-old", seen: again }, 26_000)
    expect(lane2).not.toBe(lane)
    expect(d.live("0.1")).toMatchObject({ attempt: 1, status: TaskStatus.Received })
  })

  it("R-WORK-6 a runtime lost only because its heartbeats came late is taken back by the next one: no endless resend", () => {
    const d = Driver.create({
      config: { localWorker: "exclude", progressInterval: 1_000_000_000, ackTimeout: 100_000_000 },
      standing: [{ id: "lane-0", slots: 1 }]
    })
    d.startRoot()
    d.map(LOCAL, "0", "child", Driver.items(1), 0)
    const [[lane, seq]] = sentBatches(d.last) as [[string, number, string[]]]
    d.delivered(lane, seq, 0)
    const run = { slots: 1, freeSlots: 0, incarnation: "00000000a-run", firstSeen: seq }
    d.heartbeat(lane, { ...run, seen: seq, n: 1 }, 100)
    // Its heartbeats are held up past workerTimeout: lost, readmitted, and the task goes out again (attempt 1)
    const timeout = d.state.config.workerTimeout
    const resent = d.step([], 100 + timeout + 1)
    const [[, again]] = sentBatches(resent) as [[string, number, string[]]]
    d.delivered(lane, again, 100 + timeout + 1)
    // ... to the same runtime, which was never down: its heartbeats count again and keep the new attempt
    for (let i = 1; i <= 5; i++) d.heartbeat(lane, { ...run, seen: again, n: 1 + i }, 100 + timeout + i * 500)
    d.step([], 100 + timeout + 3_000)
    expect(d.worker(lane)).toMatchObject({ lost: false, incarnation: "00000000a-run" })
    expect(d.live("0.1")).toMatchObject({ attempt: 1, status: TaskStatus.Received })
    d.succeed(lane, "0.1", '"ok"', 100 + timeout + 3_100)
    expect(d.row("0.1").status).toBe(TaskStatus.Succeeded)
  })

  it("R-WORK-6 a standing worker whose start failed is tried again a heartbeat interval later; the failures count toward maxRedeliveries", () => {
    const d = started({ queueAllowance: 0, maxRedeliveries: 1 })
    d.map(LOCAL, "0", "child", Driver.items(4))
    const batches = sentBatches(d.last)
    for (const [lane, seq] of batches) d.sendFailed(lane, seq, false, "invocation did not start", 1_000)
    expect(d.worker("lane-0").available).toBe(false)
    expect(sentTasks(d.last)).toEqual([])
    const interval = d.state.config.heartbeatInterval
    expect(d.last.wakeAt).toBeLessThanOrEqual(1_000 + interval)
    const retry = d.step([], 1_000 + interval)
    expect(
      sentTasks(retry)
        .map((task) => task.id)
        .sort()
    ).toEqual(["0.1", "0.2", "0.3", "0.4"])
    for (const [lane, seq] of sentBatches(retry))
      d.sendFailed(lane, seq, false, "invocation did not start", 2_000 + interval)
    expect(d.error("0.1")?.reason).toBe("undeliverable")
  })

  it("R-WORK-6 after a restart, tasks stored on a standing worker are judged from the restart: its invocation's heartbeat keeps them, silence sends them again", () => {
    const d = started({ queueAllowance: 0 })
    d.map(LOCAL, "0", "child", Driver.items(2))
    for (const [lane, seq] of sentBatches(d.last)) d.delivered(lane, seq)
    d.running("lane-0", "0.1")
    d.running("lane-1", "0.2")
    const instance = d.outputs.findLast((out) => out.write !== null)!.write!.instance
    const live = [...d.store.values()].filter((row) => row.status < TaskStatus.Failed)
    const restored = Driver.restore({ instance, live, terminal: [] }, LOCAL, 50_000, LANES)
    expect(restored.worker("lane-0")).toMatchObject({ standing: true, lost: false, available: true, slots: 2 })
    restored.heartbeat("lane-0", { slots: 2, freeSlots: 0 }, 60_000)
    // lane-1's invocation never shows up: its task goes out again; lane-0's heartbeat keeps its own.
    const silent = restored.step([], 50_000 + restored.state.config.workerTimeout + 1)
    expect(sentTasks(silent).map((task) => [task.id, task.attempt])).toEqual([["0.2", 1]])
    expect(restored.live("0.1")).toMatchObject({ attempt: 0, status: TaskStatus.Running })
    const out = restored.step([], 60_000 + restored.state.config.workerTimeout + 1)
    expect(sentTasks(out).map((task) => [task.id, task.attempt])).toContainEqual(["0.1", 1])
  })
})

describe("workers gone", () => {
  it("R-WORK-7 a worker the transport saw end loses what it held at once, not after workerTimeout", () => {
    const d = started({ queueAllowance: 0 })
    d.heartbeat("A", { slots: 1 })
    d.map(LOCAL, "0", "child", Driver.items(5))
    for (const [lane, seq] of sentBatches(d.last)) d.delivered(lane, seq)
    const out = d.step(
      [{ _tag: "WorkerGone", workerId: "lane-0", reason: "its invocation ended without its closing line" }],
      1_000
    )
    expect(d.live("0.1").attempt).toBe(1)
    expect(d.worker("lane-0")).toMatchObject({ lost: false, available: true, incarnation: undefined })
    // A plain worker the transport saw go stays lost until it heartbeats again.
    d.step([{ _tag: "WorkerGone", workerId: "A", reason: "connection closed" }], 1_000)
    expect(d.worker("A").lost).toBe(true)
    expect(out.warnings.join("\n")).not.toContain("lane-1")
  })

  it("R-WORK-7 the local worker is never lost this way (R-WORK-4), and an unknown worker changes nothing", () => {
    const d = started()
    d.step([{ _tag: "WorkerGone", workerId: LOCAL, reason: "x" }], 1_000)
    d.step([{ _tag: "WorkerGone", workerId: "nobody", reason: "x" }], 1_000)
    expect(d.worker(LOCAL).lost).toBe(false)
    expect(d.live("0").status).toBe(TaskStatus.Running)
    expect(d.state.workers.has("nobody")).toBe(false)
  })
})

const sentIdsOf = (d: Driver) => sentTasks(d.last).map((task) => task.id)
