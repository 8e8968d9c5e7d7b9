import { describe, expect, it } from "vitest"
import type { JobConfig } from "../model/config.ts"
import { RejectedError } from "../model/errors.ts"
import type { JobKind } from "../model/instance.ts"
import { TaskStatus } from "../model/status.ts"
import { Driver, LOCAL, replyValue, sentTasks, sentTo } from "./test-driver.ts"

const started = (overrides: Partial<JobConfig> = {}, kind: JobKind = "mapReduce") => {
  const d = Driver.create({ kind, config: { localWorker: "exclude", progressInterval: 1_000_000_000, ackTimeout: 100_000_000, ...overrides } })
  d.startRoot()
  return d
}

describe("workers", () => {
  it("R-WORK-1 a worker silent for workerTimeout (default 3 heartbeat intervals) is lost", () => {
    const d = started()
    expect(d.state.config.heartbeatInterval).toBe(5_000)
    expect(d.state.config.workerTimeout).toBe(15_000)
    d.heartbeat("A", {}, 1_000)
    expect(d.last.wakeAt).toBe(16_001)
    d.step([], 16_000)
    expect(d.worker("A").lost).toBe(false)
    d.step([], 16_001)
    expect(d.worker("A").lost).toBe(true)
    expect(d.last.wakeAt).toBe(1_000_000_000)
  })

  it("R-WORK-1 any message from the worker counts as a sign of life", () => {
    const d = started()
    d.heartbeat("A", {}, 0)
    d.map(LOCAL, "0", "child", ["1"])
    d.running("A", "0.1", 10_000)
    d.step([], 25_000)
    expect(d.worker("A").lost).toBe(false)
    d.step([], 25_001)
    expect(d.worker("A").lost).toBe(true)
  })

  it("R-WORK-1 heartbeats carry the worker's slots and queue length", () => {
    const d = started({ queueAllowance: 0 })
    d.heartbeat("A", { slots: 1, freeSlots: 1, queueLength: 0 })
    d.map(LOCAL, "0", "child", Driver.items(4))
    expect(sentTo(d.last)).toEqual({ A: ["0.1"] })
    const out = d.heartbeat("A", { slots: 3, freeSlots: 2, queueLength: 5 })
    expect(sentTo(out)).toEqual({ A: ["0.2", "0.3"] })
    expect(d.worker("A")).toMatchObject({ slots: 3, freeSlots: 2, queueLength: 5 })
  })

  it("R-WORK-2 with failover, a lost worker's unfinished sub-tasks go back to Waiting (attempt + 1, no failure) and run elsewhere", () => {
    const d = started()
    d.heartbeat("A", {}, 0)
    d.map(LOCAL, "0", "child", Driver.items(3))
    d.running("A", "0.1")
    d.succeed("A", "0.2", "2")
    d.heartbeat("B", {}, 10_000)
    const out = d.step([], 15_001)
    expect(d.worker("A").lost).toBe(true)
    expect(sentTasks(out).map((task) => [task.id, task.attempt])).toEqual([
      ["0.1", 1],
      ["0.3", 1]
    ])
    expect(sentTo(out)).toEqual({ B: ["0.1", "0.3"] })
    expect(d.row("0.1")).toMatchObject({ worker: "B", attempt: 1, failures: 0, lastError: null })
    expect(d.row("0.2")).toMatchObject({ status: TaskStatus.Succeeded, worker: "A", attempt: 0 })
    expect(d.state.runs.get(0)).toMatchObject({ failed: 0, succeeded: 1 })
  })

  it("R-WORK-2 without failover, a lost worker's unfinished sub-tasks fail with worker lost", () => {
    const d = started({ failover: false })
    d.heartbeat("A", {}, 0)
    d.heartbeat("B", {}, 0)
    d.map(LOCAL, "0", "child", Driver.items(2))
    d.heartbeat("B", {}, 10_000)
    const out = d.step([], 15_001)
    expect(out.sends).toEqual([])
    expect(d.row("0.1")).toMatchObject({ status: TaskStatus.Failed, lastError: "worker lost" })
    expect(d.live("0.2").status).toBe(TaskStatus.Dispatched)
    expect(d.state.runs.get(0)!.failed).toBe(1)
  })

  it("R-WORK-2 broadcast tasks of a lost worker fail with worker lost and never run elsewhere", () => {
    const d = started({ localWorker: "include" }, "broadcast")
    d.heartbeat("A", {}, 0)
    d.heartbeat("B", {}, 0)
    d.succeed(LOCAL, "0")
    expect(sentTo(d.last)).toEqual({ [LOCAL]: ["0.1"], A: ["0.2"], B: ["0.3"] })
    // B's send fails: its task waits for B, which then goes silent too
    d.step([{ _tag: "SendFailed", workerId: "B", seq: 0 }])
    expect(d.live("0.3").status).toBe(TaskStatus.Waiting)
    const out = d.step([], 15_001)
    expect(out.sends).toEqual([])
    expect(d.row("0.2")).toMatchObject({ status: TaskStatus.Failed, lastError: "worker lost" })
    expect(d.row("0.3")).toMatchObject({ status: TaskStatus.Failed, lastError: "worker lost" })
    expect(d.live("0.1").status).toBe(TaskStatus.Dispatched)
  })

  it("R-WORK-2 root and final tasks on a lost local worker fail the instance", () => {
    const d = started()
    d.heartbeat("A")
    const out = d.heartbeat(LOCAL, { idle: true }, 100)
    expect(out.outcome).toEqual({ ok: false, result: "worker lost its task: ROOT task 0 cannot run", finishedAt: 100 })
    expect(d.row("0")).toMatchObject({ status: TaskStatus.Failed })

    const f = started()
    f.succeed(LOCAL, "0")
    f.running(LOCAL, "0.F")
    const end = f.heartbeat(LOCAL, { idle: true }, 200)
    expect(end.outcome).toEqual({ ok: false, result: "worker lost its task: FINAL task 0.F cannot run", finishedAt: 200 })
  })

  it("R-WORK-3 an idle worker's unfinished tasks are treated as lost on that worker", () => {
    const d = started()
    d.heartbeat("A", { slots: 1 })
    d.heartbeat("B", { slots: 1 })
    d.map(LOCAL, "0", "child", Driver.items(3))
    expect(sentTo(d.last)).toEqual({ A: ["0.1", "0.3"], B: ["0.2"] })
    d.running("A", "0.1")
    const out = d.heartbeat("A", { idle: true })
    // the Running task was lost; the one still Dispatched may be on its way and waits for its ack
    expect(d.row("0.1")).toMatchObject({ attempt: 1, failures: 0 })
    expect(d.live("0.3")).toMatchObject({ status: TaskStatus.Dispatched, attempt: 0 })
    expect(sentTasks(out).map((task) => [task.id, task.attempt])).toEqual([["0.1", 1]])
    expect(d.worker("A").lost).toBe(false)
  })

  it("R-WORK-3 without failover, the forgotten task fails", () => {
    const d = started({ failover: false })
    d.heartbeat("A")
    d.map(LOCAL, "0", "child", ["1"])
    d.running("A", "0.1")
    d.heartbeat("A", { idle: true })
    expect(d.row("0.1")).toMatchObject({ status: TaskStatus.Failed, lastError: "worker lost its task" })
  })

  it("R-WORK-4 the local worker never retires while its instance is live", () => {
    const d = started()
    d.step([], 1_000_000)
    expect(d.worker(LOCAL).lost).toBe(false)
    expect(d.live("0")).toMatchObject({ status: TaskStatus.Running, worker: d.worker(LOCAL) })
    expect(d.state.outcome).toBeNull()
    // no timer is armed for the local worker's liveness
    expect(d.last.wakeAt).toBe(1_000_000_000)
    d.succeed(LOCAL, "0", "1", 2_000_000)
    expect(sentTo(d.last)).toEqual({ [LOCAL]: ["0.F"] })
  })

  it("R-WORK-5 a worker joining a live instance gets work at once", () => {
    const d = started({ queueAllowance: 0 })
    d.heartbeat("A", { slots: 1 })
    d.map(LOCAL, "0", "child", Driver.items(3))
    const out = d.heartbeat("B", { slots: 5 }, 10)
    expect(sentTo(out)).toEqual({ B: ["0.2", "0.3"] })
  })

  it("R-WORK-5 at most maxWorkers workers may join; a lost worker makes room", () => {
    const d = started({ maxWorkers: 2 })
    d.heartbeat("A", {}, 0)
    d.map(LOCAL, "0", "child", Driver.items(1))
    const join = d.heartbeatEvent("B")
    const out = d.step([join], 1_000)
    const value = replyValue(out, join.reply)
    expect(value).toBeInstanceOf(RejectedError)
    expect((value as RejectedError).reason).toBe("worker-limit")
    expect(d.state.workers.has("B")).toBe(false)
    d.heartbeat(LOCAL, {}, 15_001)
    expect(d.worker("A").lost).toBe(true)
    // the local worker alone took A's task; B may join now and gets the next ones
    expect(sentTo(d.last)).toEqual({ [LOCAL]: ["0.1"] })
    const rejoin = d.heartbeatEvent("B")
    expect(replyValue(d.step([rejoin], 15_002), rejoin.reply)).toEqual({ _tag: "Ack" })
    d.map(LOCAL, "0", "child", Driver.items(1))
    expect(sentTo(d.last)).toEqual({ B: ["0.2"] })
  })

  it("R-WORK-5 a lost worker that heartbeats again is admitted again and gets work", () => {
    const d = started()
    d.heartbeat("A", {}, 0)
    d.step([], 15_001)
    expect(d.worker("A").lost).toBe(true)
    d.map(LOCAL, "0", "child", Driver.items(2))
    expect(sentTo(d.last)).toEqual({ [LOCAL]: ["0.1", "0.2"] })
    const out = d.heartbeat("A", {}, 20_000)
    expect(d.worker("A").lost).toBe(false)
    expect(out.replies[0]!.value).toEqual({ _tag: "Ack" })
    d.map(LOCAL, "0", "child", Driver.items(2))
    expect(sentTo(d.last)).toEqual({ A: ["0.3", "0.4"] })
  })
})
