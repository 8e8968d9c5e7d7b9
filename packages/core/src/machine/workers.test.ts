import { describe, expect, it } from "vitest"
import type { JobConfig } from "../model/config.ts"
import { RejectedError } from "../model/errors.ts"
import type { JobKind } from "../model/instance.ts"
import type { StatusReport } from "../model/messages.ts"
import { TaskStatus } from "../model/status.ts"
import type { MachineEvent } from "./state.ts"
import { Driver, LOCAL, replyValue, sentTasks, sentTo } from "./test-driver.ts"

const started = (overrides: Partial<JobConfig> = {}, kind: JobKind = "mapReduce") => {
  const d = Driver.create({
    kind,
    config: { localWorker: "exclude", progressInterval: 1_000_000_000, ackTimeout: 100_000_000, ...overrides }
  })
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
    expect(d.row("0.1").status).toBe(TaskStatus.Failed)
    expect(d.error("0.1")).toEqual({ tag: "TaskfoldError", reason: "worker-lost", message: "worker lost: A" })
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
    const toB = d.last.sends.find((send) => send.workerId === "B")!
    d.sendFailed("B", toB.batch.seq)
    expect(d.live("0.3")).toMatchObject({ status: TaskStatus.Waiting, pinnedTo: "B" })
    const out = d.step([], 15_001)
    expect(out.sends).toEqual([])
    expect(d.row("0.2").status).toBe(TaskStatus.Failed)
    expect(d.error("0.2")).toEqual({ tag: "TaskfoldError", reason: "worker-lost", message: "worker lost: A" })
    expect(d.row("0.3").status).toBe(TaskStatus.Failed)
    expect(d.error("0.3")).toMatchObject({ tag: "TaskfoldError", reason: "worker-lost" })
    expect(d.live("0.1").status).toBe(TaskStatus.Dispatched)
  })

  it("R-WORK-2 root and final tasks on a lost local worker fail the instance", () => {
    const d = started()
    d.heartbeat("A")
    const out = d.heartbeat(LOCAL, { idle: true }, 100)
    expect(out.outcome).toEqual({
      ok: false,
      result: "worker lost its task: ROOT task 0 cannot run",
      finishedAt: 100,
      counts: { created: 1, succeeded: 0, failed: 1 },
      errors: [
        {
          taskId: "0",
          name: "ROOT",
          attempt: 0,
          error: { tag: "TaskfoldError", reason: "worker-lost", message: "worker lost its task: local" }
        }
      ]
    })
    expect(d.row("0")).toMatchObject({ status: TaskStatus.Failed })

    const f = started()
    f.succeed(LOCAL, "0")
    f.running(LOCAL, "0.F")
    const end = f.heartbeat(LOCAL, { idle: true }, 200)
    expect(end.outcome).toMatchObject({
      ok: false,
      result: "worker lost its task: FINAL task 0.F cannot run",
      finishedAt: 200,
      counts: { created: 2, succeeded: 1, failed: 1 }
    })
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
    expect(d.row("0.1").status).toBe(TaskStatus.Failed)
    expect(d.error("0.1")).toEqual({ tag: "TaskfoldError", reason: "worker-lost", message: "worker lost its task: A" })
  })

  it("R-WORK-3 an idle heartbeat judges only tasks sent in batches the worker had seen when it wrote it", () => {
    const d = started()
    d.heartbeat("A", { slots: 10 })
    d.map(LOCAL, "0", "child", ["1"])
    const [older] = d.last.sends
    d.delivered("A", older!.batch.seq)
    d.map(LOCAL, "0", "child", ["2"])
    const [newer] = d.last.sends
    d.delivered("A", newer!.batch.seq)
    expect(d.live("0.2")).toMatchObject({ status: TaskStatus.Received, sentSeq: newer!.batch.seq })
    // written after the worker took the first batch, before it took the second: only 0.1 was forgotten
    d.heartbeat("A", { slots: 10, idle: true, seen: older!.batch.seq })
    expect(d.live("0.1")).toMatchObject({ attempt: 1, failures: 0 })
    expect(d.live("0.2")).toMatchObject({ status: TaskStatus.Received, attempt: 0 })
    // a heartbeat that had seen it too, and still says idle: now 0.2 is lost as well
    d.heartbeat("A", { slots: 10, idle: true, seen: newer!.batch.seq })
    expect(d.live("0.2")).toMatchObject({ attempt: 1, failures: 0 })
  })

  it("R-WORK-3 an idle heartbeat older than a message already seen from the worker reaps nothing", () => {
    const d = started()
    d.heartbeat("A", { slots: 10, n: 1 })
    d.map(LOCAL, "0", "child", ["1"])
    d.report("A", [{ taskId: "0.1", attempt: 0, status: TaskStatus.Running }])
    d.step([d.reportsEvent("A", [], 5)])
    expect(d.worker("A").lastMessage).toBe(5)
    // written before the worker's message 5 (when it held nothing yet), delivered after it
    d.heartbeat("A", { slots: 10, idle: true, n: 4 })
    expect(d.live("0.1")).toMatchObject({ status: TaskStatus.Running, attempt: 0 })
    // it still shows the worker alive
    expect(d.worker("A").lastSeen).toBe(d.now)
    // a newer idle heartbeat judges as usual
    d.heartbeat("A", { slots: 10, idle: true, n: 6 })
    expect(d.live("0.1")).toMatchObject({ attempt: 1 })
  })

  it("R-WORK-2 a heartbeat naming a new incarnation loses what the old one had taken; batches on their way wait for their answer; the old one's late heartbeats change nothing", () => {
    const d = started()
    d.heartbeat("A", { slots: 10, incarnation: "a-1", n: 0 })
    d.map(LOCAL, "0", "child", Driver.items(2))
    d.running("A", "0.1")
    expect(d.live("0.2").status).toBe(TaskStatus.Dispatched)
    // A's process restarted: what it had taken is gone, and it numbers its messages from 0 again
    d.heartbeat("A", { slots: 10, incarnation: "a-2", n: 0, firstSeen: -1 })
    expect(d.live("0.1")).toMatchObject({ attempt: 1, failures: 0 })
    expect(d.worker("A")).toMatchObject({ incarnation: "a-2", retired: ["a-1"], lastMessage: 0 })
    // 0.2 was still on its way: its send's answer (or the ack timeout) decides
    expect(d.live("0.2")).toMatchObject({ status: TaskStatus.Dispatched, attempt: 0 })
    // a late heartbeat of the old incarnation, idle: nothing of the new one's is reaped
    const resent = d.last.sends.find((send) => send.batch.tasks.some((task) => task.id === "0.1"))!
    d.delivered("A", resent.batch.seq)
    d.heartbeat("A", { slots: 10, incarnation: "a-1", idle: true, n: 9 })
    expect(d.live("0.1")).toMatchObject({ status: TaskStatus.Received, attempt: 1 })
    expect(d.worker("A").incarnation).toBe("a-2")

    const f = started({ failover: false })
    f.heartbeat("A", { incarnation: "a-1" })
    f.map(LOCAL, "0", "child", ["1"])
    f.running("A", "0.1")
    f.heartbeat("A", { incarnation: "a-2" })
    expect(f.row("0.1").status).toBe(TaskStatus.Failed)
    expect(f.error("0.1")).toEqual({ tag: "TaskfoldError", reason: "worker-lost", message: "worker restarted: A" })
  })

  it("R-WORK-2 R-DISP-9 a retired incarnation's late reports and pulls place nothing on the worker; what it finished counts", () => {
    const d = started({ dispatchMode: "pull", maxInFlight: 2, ackTimeout: 1_000 })
    d.heartbeat("A", { slots: 2, incarnation: "a-1", n: 1 }, 0)
    d.map(LOCAL, "0", "child", ["1", "2"], 0)
    const pullAs = (incarnation: string, at: number) => {
      const event: MachineEvent = {
        _tag: "Pull",
        reply: d.replyId(),
        request: { instanceId: "inst-1", workerId: "A", incarnation, pageSize: 2 }
      }
      const value = replyValue(d.step([event], at), event.reply)
      if (value instanceof RejectedError || value._tag !== "Pulled") throw new Error("not a Pulled reply")
      return value.batch?.tasks.map((task) => task.id) ?? null
    }
    const reportAs = (incarnation: string, n: number, reports: ReadonlyArray<StatusReport>, at: number) => {
      const event = d.reportsEvent("A", reports, n)
      d.step([{ ...event, batch: { ...event.batch, incarnation } }], at)
    }
    expect(pullAs("a-1", 10)).toEqual(["0.1", "0.2"])
    // A's process died with both pulled tasks; the new one says so before the old one's last words arrive
    d.heartbeat("A", { slots: 2, incarnation: "a-2", seen: -1, firstSeen: -1, n: 1 }, 100)
    reportAs(
      "a-1",
      7,
      [
        { taskId: "0.1", attempt: 0, status: TaskStatus.Received },
        { taskId: "0.2", attempt: 0, status: TaskStatus.Succeeded, result: '"done"' }
      ],
      150
    )
    expect(d.live("0.1")).toMatchObject({ status: TaskStatus.Dispatched, attempt: 0 })
    expect(d.row("0.2").status).toBe(TaskStatus.Succeeded)
    // the old run's message number does not hide the new run's heartbeats
    d.heartbeat("A", { slots: 3, incarnation: "a-2", idle: true, seen: -1, firstSeen: -1, n: 2 }, 200)
    expect(d.worker("A")).toMatchObject({ incarnation: "a-2", lastMessage: 2, slots: 3 })
    expect(pullAs("a-1", 300)).toBeNull()
    // no one took 0.1: after ackTimeout it goes out again, counted, and the new run gets it
    d.step([], 1_100)
    expect(d.live("0.1")).toMatchObject({ status: TaskStatus.Waiting, redeliveries: 1 })
    expect(pullAs("a-2", 1_200)).toEqual(["0.1"])
  })

  it("R-WORK-2 a new incarnation keeps what it took itself (batches from its firstSeen on)", () => {
    const d = started()
    d.heartbeat("A", { slots: 10, incarnation: "a-1" })
    d.map(LOCAL, "0", "child", ["1"])
    d.running("A", "0.1")
    // the new process took the next batch before its first heartbeat reached the tracker
    d.map(LOCAL, "0", "child", ["2"])
    const [next] = d.last.sends
    d.delivered("A", next!.batch.seq)
    d.heartbeat("A", { slots: 10, incarnation: "a-2", firstSeen: next!.batch.seq, seen: next!.batch.seq })
    expect(d.live("0.1")).toMatchObject({ attempt: 1 })
    expect(d.live("0.2")).toMatchObject({ status: TaskStatus.Received, attempt: 0 })
  })

  it("R-WORK-3 R-DISP-10 a batch the transport delivered but the idle worker never took is redelivered, counted, once ackTimeout has passed", () => {
    const d = started({ ackTimeout: 1_000 })
    d.heartbeat("A", { slots: 10, seen: -1 }, 0)
    d.map(LOCAL, "0", "child", ["1"], 0)
    const [send] = d.last.sends
    d.delivered("A", send!.batch.seq, 10)
    expect(d.live("0.1").status).toBe(TaskStatus.Received)
    // the worker says idle, and has seen no batch: too early to tell
    d.heartbeat("A", { slots: 10, idle: true, seen: -1 }, 500)
    expect(d.live("0.1")).toMatchObject({ status: TaskStatus.Received, attempt: 0 })
    // still idle, still not seen, past ackTimeout: the batch never reached it
    d.heartbeat("A", { slots: 10, idle: true, seen: -1 }, 1_100)
    expect(d.live("0.1")).toMatchObject({ attempt: 1, redeliveries: 1, failures: 0 })
  })

  // Known src bug (reported to the lead): adoptIncarnation clears worker.unseen also when the worker had no known
  // incarnation yet (a worker restored from stored rows, or one whose heartbeats named none). The tasks of a batch
  // it was delivered before then are never reaped by its idle heartbeats (their seq is above `seen` of the new
  // process) nor redelivered (their entry in `unseen` is gone): they stay Received and the instance never ends.
  it("R-WORK-2 R-DISP-10 a batch taken by an earlier incarnation, whose send is answered after the worker restarted, is delivered again", () => {
    const d = started({ ackTimeout: 1_000, maxRedeliveries: 3 })
    d.heartbeat("A", { slots: 1, incarnation: "a-1", seen: -1, firstSeen: -1, n: 1 }, 0)
    d.map(LOCAL, "0", "child", ["1"], 0)
    const first = d.last.sends[0]!.batch.seq
    // A's process takes that batch and dies; the new one gets another batch and works on it
    d.heartbeat("A", { slots: 2, incarnation: "a-2", seen: -1, firstSeen: -1, n: 1 }, 100)
    d.map(LOCAL, "0", "child", ["2"], 100)
    const second = d.last.sends.find((send) => send.workerId === "A")!.batch.seq
    d.delivered("A", second, 110)
    // the old process's answer comes late: the tracker takes 0.1 for Received on A
    d.delivered("A", first, 120)
    expect(d.live("0.1")).toMatchObject({ status: TaskStatus.Received, attempt: 0 })
    // the new incarnation took only the second batch and is busy with it: never idle, never the first batch
    d.heartbeat("A", { slots: 2, incarnation: "a-2", seen: second, firstSeen: second, n: 2 }, 600)
    expect(d.live("0.1")).toMatchObject({ attempt: 0 })
    d.heartbeat("A", { slots: 2, incarnation: "a-2", seen: second, firstSeen: second, n: 3 }, 1_200)
    expect(d.live("0.1")).toMatchObject({ attempt: 1, redeliveries: 1 })
    expect(d.live("0.2")).toMatchObject({ status: TaskStatus.Received, attempt: 0 })
  })

  it("R-WORK-3 R-DISP-10 a task delivered before the first incarnation the tracker hears of is not kept forever", () => {
    const d = started({ ackTimeout: 1_000 })
    d.heartbeat("A", { slots: 10 }, 0)
    d.map(LOCAL, "0", "child", ["1"], 0)
    d.delivered("A", d.last.sends[0]!.batch.seq, 10)
    expect(d.live("0.1").status).toBe(TaskStatus.Received)
    // A's process restarted; the new one holds nothing and has taken no batch: past ackTimeout the batch was
    // never taken, and the task is delivered again (counted)
    d.heartbeat("A", { slots: 10, idle: true, incarnation: "a-2", seen: -1, n: 1 }, 500)
    expect(d.live("0.1")).toMatchObject({ status: TaskStatus.Received, attempt: 0 })
    d.heartbeat("A", { slots: 10, idle: true, incarnation: "a-2", seen: -1, n: 2 }, 2_000)
    expect(d.live("0.1")).toMatchObject({ attempt: 1, redeliveries: 1 })
  })

  it("R-DISP-10 R-WORK-1 a stall of the tracker's own thread is credited: no worker is lost and no send expires on it", () => {
    const stalled = started({ ackTimeout: 1_000 })
    stalled.heartbeat("A", {}, 0)
    stalled.map(LOCAL, "0", "child", ["1"], 0)
    expect(stalled.live("0.1")).toMatchObject({ status: TaskStatus.Dispatched, worker: stalled.worker("A") })
    // the thread was busy for 20 s: nothing could reach the tracker meanwhile
    stalled.step([{ _tag: "Stalled", ms: 20_000 }], 20_000)
    expect(stalled.worker("A").lost).toBe(false)
    expect(stalled.live("0.1")).toMatchObject({ status: TaskStatus.Dispatched, attempt: 0, redeliveries: 0 })
    // the clocks start again from the end of the stall: past them, the usual rules apply
    stalled.step([], 20_999)
    expect(stalled.live("0.1")).toMatchObject({ attempt: 0 })
    stalled.step([], 21_000)
    expect(stalled.live("0.1")).toMatchObject({ attempt: 1, redeliveries: 1 })
    stalled.step([], 35_001)
    expect(stalled.worker("A").lost).toBe(true)

    // the same silence without a stall: A is lost and its task goes elsewhere
    const silent = started({ ackTimeout: 1_000 })
    silent.heartbeat("A", {}, 0)
    silent.map(LOCAL, "0", "child", ["1"], 0)
    silent.step([], 20_000)
    expect(silent.worker("A").lost).toBe(true)
    expect(silent.live("0.1").attempt).toBeGreaterThan(0)
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
    expect(replyValue(d.step([rejoin], 15_002), rejoin.reply)).toEqual({
      _tag: "Heartbeat",
      reply: { dispatchMode: "push" }
    })
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
    expect(out.replies[0]!.value).toEqual({ _tag: "Heartbeat", reply: { dispatchMode: "push" } })
    d.map(LOCAL, "0", "child", Driver.items(2))
    expect(sentTo(d.last)).toEqual({ A: ["0.3", "0.4"] })
  })
})
