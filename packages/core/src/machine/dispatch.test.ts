import { describe, expect, it } from "vitest"
import type { JobConfig } from "../model/config.ts"
import { RejectedError } from "../model/errors.ts"
import type { JobKind } from "../model/instance.ts"
import { TaskKind, TaskStatus } from "../model/status.ts"
import type { MachineEvent, StepOutput } from "./state.ts"
import { Driver, LOCAL, replyValue, sentBatches, sentIds, sentTasks, sentTo } from "./test-driver.ts"

const started = (overrides: Partial<JobConfig> = {}, kind: JobKind = "mapReduce") => {
  const d = Driver.create({ kind, config: { localWorker: "exclude", ...overrides } })
  d.startRoot()
  return d
}

const succeedAll = (d: Driver, workerId: string, ids: string[]) =>
  d.report(
    workerId,
    ids.map((taskId) => ({ taskId, attempt: d.attempt(taskId), status: TaskStatus.Succeeded, result: "1" }))
  )

const pull = (d: Driver, workerId: string, pageSize: number): { out: StepOutput; ids: string[] | null } => {
  const event: MachineEvent = {
    _tag: "Pull",
    reply: d.replyId(),
    request: { instanceId: "inst-1", workerId, pageSize }
  }
  const out = d.step([event])
  const value = replyValue(out, event.reply)
  if (value instanceof RejectedError) throw value
  if (value._tag !== "Pulled") throw new Error("not a Pulled reply")
  return { out, ids: value.batch === null ? null : value.batch.tasks.map((task) => task.id) }
}

describe("dispatch", () => {
  it("R-DISP-1 a task is recorded as Dispatched(worker, attempt) in the write of the step that sends it", () => {
    const d = started()
    d.heartbeat("A")
    const out = d.step([d.mapEvent(LOCAL, "0", "child", Driver.items(2))])
    expect(sentTo(out)).toEqual({ A: ["0.1", "0.2"] })
    for (const task of sentTasks(out)) {
      const row = out.write!.inserts.find((r) => r.id === task.id)!
      expect(row).toMatchObject({ status: TaskStatus.Dispatched, worker: "A", attempt: task.attempt })
    }
    // the root's own dispatch, in the very first step
    const first = d.outputs[0]!
    expect(sentTo(first)).toEqual({ [LOCAL]: ["0"] })
    expect(first.write!.inserts).toEqual([
      expect.objectContaining({ id: "0", status: TaskStatus.Dispatched, worker: LOCAL, attempt: 0 })
    ])
  })

  it("R-DISP-1 tasks for one worker go in one batch of at most dispatchBatchSize; batch seqs are numbered per instance, across workers", () => {
    const d = started({ dispatchBatchSize: 3 })
    d.heartbeat("A", { slots: 50 })
    d.heartbeat("B", { slots: 50 })
    const out = d.step([d.mapEvent(LOCAL, "0", "child", Driver.items(13))])
    // the root's batch was seq 0 (to the local worker); the next ones go on from 1, whatever their worker
    expect(sentBatches(d.outputs[0]!)).toEqual([[LOCAL, 0, ["0"]]])
    expect(out.sends.map((send) => [send.workerId, send.batch.seq, send.batch.tasks.length])).toEqual([
      ["A", 1, 3],
      ["A", 2, 3],
      ["A", 3, 1],
      ["B", 4, 3],
      ["B", 5, 3]
    ])
    expect(d.state.nextBatch).toBe(6)
    expect(out.write!.instance.nextBatch).toBe(6)
    expect(out.sends[0]!.batch).toMatchObject({
      instanceId: "inst-1",
      job: "job",
      params: '{"p":1}',
      maxResultBytes: 1024 * 1024
    })
  })

  it("R-DISP-1 R-DISP-10 a batch carries the params until the worker has taken one; a map job's batches carry no result limit", () => {
    const d = started()
    d.heartbeat("A", { slots: 50 })
    d.map(LOCAL, "0", "child", ["1"])
    const [first] = d.last.sends
    expect(first!.batch.params).toBe('{"p":1}')
    // not taken yet (no answer to the send): the next batch still carries them
    d.map(LOCAL, "0", "child", ["2"])
    const [second] = d.last.sends
    expect(second!.batch.params).toBe('{"p":1}')
    d.delivered("A", second!.batch.seq)
    d.map(LOCAL, "0", "child", ["3"])
    const [third] = d.last.sends
    expect(third!.workerId).toBe("A")
    expect("params" in third!.batch).toBe(false)
    expect(third!.batch.maxResultBytes).toBe(1024 * 1024)
    // a batch without them that fails may have met a restarted worker: sent again at once, with them, not counted
    const out = d.sendFailed("A", third!.batch.seq)
    expect(
      out.sends.map((send) => [send.workerId, send.batch.params, send.batch.tasks.map((task) => task.id)])
    ).toEqual([["A", '{"p":1}', ["0.3"]]])
    expect(d.live("0.3")).toMatchObject({ attempt: 1, redeliveries: 0, failures: 0 })
    // that one failing too counts, as any failed send
    d.sendFailed("A", out.sends[0]!.batch.seq)
    expect(d.live("0.3")).toMatchObject({ attempt: 2, redeliveries: 1, status: TaskStatus.Waiting })
    expect(d.worker("A").available).toBe(false)

    const m = started({}, "map")
    m.heartbeat("A")
    m.map(LOCAL, "0", "child", ["1"])
    expect("maxResultBytes" in m.last.sends[0]!.batch).toBe(false)
  })

  it("R-DISP-1 the default batch size is 256", () => {
    const d = started()
    d.heartbeat("A", { slots: 1000 })
    const out = d.step([d.mapEvent(LOCAL, "0", "child", Driver.items(300))])
    expect(out.sends.map((send) => send.batch.tasks.length)).toEqual([256, 44])
  })

  it("R-DISP-2 a worker gets its slots plus the queue allowance at once, and more as soon as it frees credit", () => {
    const d = started({ queueAllowance: 1 })
    d.heartbeat("A", { slots: 2 })
    const out = d.step([d.mapEvent(LOCAL, "0", "child", Driver.items(10))])
    expect(sentTo(out)).toEqual({ A: ["0.1", "0.2", "0.3"] })
    // nothing more without credit, however late it is
    expect(sentIds(d.step([{ _tag: "Tick" }], 4_000))).toEqual([])
    // one finishes: one more goes in the same step, no timer involved
    d.succeed("A", "0.1", "1", 4_000)
    expect(sentTo(d.last)).toEqual({ A: ["0.4"] })
    succeedAll(d, "A", ["0.2", "0.3"])
    expect(sentTo(d.last)).toEqual({ A: ["0.5", "0.6"] })
  })

  it("R-DISP-2 a worker that joins with credit gets waiting tasks at once", () => {
    const d = Driver.create({ kind: "mapReduce", config: { queueAllowance: 0 } })
    d.startRoot({ slots: 1 })
    d.map(LOCAL, "0", "child", Driver.items(3))
    expect(d.last.sends).toEqual([])
    const out = d.heartbeat("A", { slots: 2 })
    expect(sentTo(out)).toEqual({ A: ["0.1", "0.2"] })
  })

  it("R-DISP-3 unpinned tasks go round-robin over workers with credit, continuing across rounds", () => {
    const d = started()
    d.heartbeat("A")
    d.heartbeat("B")
    d.heartbeat("C")
    d.map(LOCAL, "0", "child", Driver.items(4))
    expect(sentTo(d.last)).toEqual({ A: ["0.1", "0.4"], B: ["0.2"], C: ["0.3"] })
    d.map(LOCAL, "0", "child", Driver.items(2))
    expect(sentTo(d.last)).toEqual({ B: ["0.5"], C: ["0.6"] })
  })

  it("R-DISP-3 round-robin continues across rounds of one task each", () => {
    const d = started()
    d.heartbeat("A")
    d.heartbeat("B")
    const placed: string[] = []
    for (let i = 0; i < 4; i++) {
      d.map(LOCAL, "0", "child", ["1"])
      placed.push(...Object.keys(sentTo(d.last)))
    }
    expect(placed).toEqual(["A", "B", "A", "B"])
  })

  it("R-DISP-3 round-robin skips workers without credit", () => {
    const d = started({ queueAllowance: 0 })
    d.heartbeat("A", { slots: 1 })
    d.heartbeat("B", { slots: 3 })
    d.map(LOCAL, "0", "child", Driver.items(5))
    expect(sentTo(d.last)).toEqual({ A: ["0.1"], B: ["0.2", "0.3", "0.4"] })
    expect(d.state.waitingCount).toBe(1)
  })

  it("R-DISP-3 least-loaded routing sends each task to the worker with the most credit", () => {
    const d = started({ routing: "least-loaded", queueAllowance: 0 })
    d.heartbeat("A", { slots: 1 })
    d.heartbeat("B", { slots: 3 })
    d.map(LOCAL, "0", "child", Driver.items(4))
    // B 3, B 2, then a tie 1:1 goes to the first joined (A), then B
    expect(sentTo(d.last)).toEqual({ A: ["0.3"], B: ["0.1", "0.2", "0.4"] })
  })

  it("R-DISP-4 the root goes only to the local worker", () => {
    const d = Driver.create({ kind: "mapReduce" })
    const out = d.heartbeat("A", { slots: 100 })
    expect(out.sends).toEqual([])
    expect(d.live("0").status).toBe(TaskStatus.Waiting)
    const local = d.heartbeat(LOCAL, { slots: 0 })
    expect(sentTo(local)).toEqual({ [LOCAL]: ["0"] })
    expect(sentTasks(local)[0]!.kind).toBe(TaskKind.Root)
  })

  it("R-DISP-4 the final task goes only to the local worker", () => {
    const d = started({ queueAllowance: 0 })
    d.heartbeat("A", { slots: 100 })
    d.map(LOCAL, "0", "child", ["1"])
    d.succeed(LOCAL, "0")
    d.succeed("A", "0.1")
    expect(sentTo(d.last)).toEqual({ [LOCAL]: ["0.F"] })
    expect(sentTasks(d.last)[0]!.kind).toBe(TaskKind.Final)
  })

  it("R-DISP-4 broadcast tasks go each to its own worker", () => {
    const d = started({ queueAllowance: 0, localWorker: "include" }, "broadcast")
    d.heartbeat("A", { slots: 0 })
    d.heartbeat("B", { slots: 5 })
    d.succeed(LOCAL, "0", '"pre"')
    expect(sentTo(d.last)).toEqual({ [LOCAL]: ["0.1"], A: ["0.2"], B: ["0.3"] })
    expect(sentTasks(d.last).map((task) => [task.kind, task.body])).toEqual([
      [TaskKind.Broadcast, '"pre"'],
      [TaskKind.Broadcast, '"pre"'],
      [TaskKind.Broadcast, '"pre"']
    ])
  })

  it("R-DISP-5 localWorker exclude keeps sub-tasks off the local worker when another worker is alive", () => {
    const d = started()
    d.heartbeat(LOCAL, { slots: 100 })
    d.heartbeat("A", { slots: 2 })
    d.map(LOCAL, "0", "child", Driver.items(5))
    // A's credit is 2 + 256: all go to A, none to the idle local worker
    expect(sentTo(d.last)).toEqual({ A: ["0.1", "0.2", "0.3", "0.4", "0.5"] })
  })

  it("R-DISP-5 with the local worker alone, it is used rather than stalling", () => {
    const d = started()
    d.map(LOCAL, "0", "child", Driver.items(2))
    expect(sentTo(d.last)).toEqual({ [LOCAL]: ["0.1", "0.2"] })
  })

  it("R-DISP-5 when the other worker is lost, the local worker takes over", () => {
    const d = started({ queueAllowance: 0 })
    d.heartbeat(LOCAL, { slots: 10 })
    d.heartbeat("A", { slots: 1 })
    d.map(LOCAL, "0", "child", Driver.items(3))
    expect(sentTo(d.last)).toEqual({ A: ["0.1"] })
    const out = d.step([], 15_001)
    expect(d.worker("A").lost).toBe(true)
    expect(sentTo(out)).toEqual({ [LOCAL]: ["0.2", "0.3", "0.1"] })
  })

  it("R-DISP-5 localWorker include shares sub-tasks with the local worker", () => {
    const d = started({ localWorker: "include" })
    d.heartbeat("A")
    d.map(LOCAL, "0", "child", Driver.items(2))
    expect(sentTo(d.last)).toEqual({ [LOCAL]: ["0.1"], A: ["0.2"] })
  })

  it("R-DISP-6 dispatchRate caps sub-task dispatch with a token bucket", () => {
    const d = started({ dispatchRate: "2/s" })
    d.heartbeat("A", { slots: 100 })
    d.map(LOCAL, "0", "child", Driver.items(6))
    expect(sentIds(d.last)).toEqual(["0.1", "0.2"])
    expect(d.last.wakeAt).toBe(500)
    expect(sentIds(d.step([], 499))).toEqual([])
    expect(sentIds(d.step([], 500))).toEqual(["0.3"])
    expect(d.last.wakeAt).toBe(1_000)
    // a long pause refills the bucket only up to its size
    expect(sentIds(d.step([], 10_000))).toEqual(["0.4", "0.5"])
    expect(sentIds(d.step([], 10_499))).toEqual([])
    expect(sentIds(d.step([], 10_500))).toEqual(["0.6"])
  })

  it("R-DISP-6 rates read as per second by default, per minute and per hour", () => {
    expect(Driver.create({ config: { dispatchRate: "500" } }).state.rate).toEqual({ count: 500, perMs: 1_000 })
    expect(Driver.create({ config: { dispatchRate: "500/s" } }).state.rate).toEqual({ count: 500, perMs: 1_000 })
    expect(Driver.create({ config: { dispatchRate: "100/h" } }).state.rate).toEqual({ count: 100, perMs: 3_600_000 })
    const d = started({ dispatchRate: "30/m" })
    d.heartbeat("A", { slots: 100 })
    d.map(LOCAL, "0", "child", Driver.items(32))
    expect(sentIds(d.last)).toHaveLength(30)
    expect(d.last.wakeAt).toBe(2_000)
    expect(sentIds(d.step([], 1_999))).toEqual([])
    expect(sentIds(d.step([], 2_000))).toEqual(["0.31"])
  })

  it("R-DISP-6 pinned tasks are not held back by the rate", () => {
    const d = started({ dispatchRate: "1/h", retryBackoff: { kind: "fixed", ms: 0 } })
    d.heartbeat("A", { slots: 100 })
    d.map(LOCAL, "0", "child", Driver.items(2))
    expect(sentIds(d.last)).toEqual(["0.1"])
    d.fail(LOCAL, "0")
    expect(sentTo(d.last)).toEqual({ [LOCAL]: ["0"] })
  })

  it("R-DISP-7 R-DISP-10 a failed send puts its tasks back to Waiting (attempt + 1, a redelivery, no failure) and rests the worker until it heartbeats", () => {
    const d = started()
    d.heartbeat("A")
    d.heartbeat("B")
    d.map(LOCAL, "0", "child", Driver.items(2))
    const toA = d.last.sends.find((send) => send.workerId === "A")!
    expect(toA.batch.tasks.map((task) => task.id)).toEqual(["0.1"])
    const out = d.sendFailed("A", toA.batch.seq, false, "refused")
    expect(sentTo(out)).toEqual({ B: ["0.1"] })
    expect(sentTasks(out)[0]!.attempt).toBe(1)
    expect(d.live("0.1")).toMatchObject({ attempt: 1, failures: 0, redeliveries: 1, status: TaskStatus.Dispatched })
    expect(out.warnings.some((warning) => warning.includes("refused"))).toBe(true)
    expect(d.worker("A").available).toBe(false)
    // A gets nothing new until it heartbeats
    d.map(LOCAL, "0", "child", Driver.items(2))
    expect(sentTo(d.last)).toEqual({ B: ["0.3", "0.4"] })
    d.heartbeat("A")
    d.map(LOCAL, "0", "child", Driver.items(2))
    expect(Object.keys(sentTo(d.last)).sort()).toEqual(["A", "B"])
  })

  it("R-DISP-10 send failures count toward maxRedeliveries: past it the task fails as undeliverable", () => {
    const d = started({ maxRedeliveries: 2, queueAllowance: 0 })
    // B has no room but keeps the local worker out once A is unhealthy, so the task can only go to A.
    d.heartbeat("B", { slots: 0 })
    d.heartbeat("A")
    d.map(LOCAL, "0", "child", ["1"])
    for (let i = 1; i <= 3; i++) {
      const send = d.last.sends.find((s) => s.workerId === "A")!
      d.sendFailed("A", send.batch.seq, false, `refused ${i}`)
      if (i <= 2) {
        expect(d.live("0.1")).toMatchObject({ attempt: i, redeliveries: i, failures: 0, status: TaskStatus.Waiting })
        // From the second miss in a row the worker rests before it gets the task again.
        d.heartbeat("A", {}, Math.max(d.now, d.worker("A").restUntil))
      }
    }
    expect(d.state.tasks.has("0.1")).toBe(false)
    expect(d.row("0.1")).toMatchObject({ status: TaskStatus.Failed, redeliveries: 3, failures: 0 })
    expect(d.error("0.1")).toEqual({
      tag: "TaskfoldError",
      reason: "undeliverable",
      message: "not received after 3 deliveries; the last: refused 3"
    })
    expect(d.state.runs.get(0)!.failed).toBe(1)
  })

  it("R-DISP-10 a batch too large for the worker is split: its tasks go back without counting and the worker takes batches of half the size", () => {
    const d = started({ dispatchBatchSize: 8 })
    d.heartbeat("A", { slots: 50 })
    d.map(LOCAL, "0", "child", Driver.items(8))
    const [batch] = d.last.sends
    expect(batch!.batch.tasks).toHaveLength(8)
    const out = d.sendFailed("A", batch!.batch.seq, true, "413 payload too large")
    // split at once: the same tasks, attempt + 1, in batches of 4, no redelivery counted
    expect(out.sends.map((send) => [send.workerId, send.batch.tasks.length])).toEqual([
      ["A", 4],
      ["A", 4]
    ])
    expect(d.live("0.1")).toMatchObject({ attempt: 1, redeliveries: 0, failures: 0, status: TaskStatus.Dispatched })
    expect(d.worker("A")).toMatchObject({ batchLimit: 4, available: true })
    // still too large: halved again
    d.sendFailed("A", out.sends[0]!.batch.seq, true, "413")
    expect(d.worker("A").batchLimit).toBe(2)
    expect(d.last.sends.map((send) => send.batch.tasks.length)).toEqual([2, 2])
  })

  it("R-DISP-10 a single task too large for any message fails with too-large, no retry", () => {
    const d = started({ taskRetries: 3 })
    d.heartbeat("A")
    d.map(LOCAL, "0", "child", ["1", "2"])
    const toA = d.last.sends.find((send) => send.workerId === "A")!
    expect(toA.batch.tasks).toHaveLength(2)
    d.sendFailed("A", toA.batch.seq, true, "413")
    const single = d.last.sends.find((send) => send.workerId === "A")!
    expect(single.batch.tasks.map((task) => task.id)).toEqual(["0.1"])
    d.sendFailed("A", single.batch.seq, true, "413 payload too large")
    expect(d.row("0.1")).toMatchObject({ status: TaskStatus.Failed, failures: 0 })
    const error = d.error("0.1")!
    expect(error).toMatchObject({ tag: "TaskfoldError", reason: "too-large" })
    expect(error.message).toContain("0.1")
    expect(error.message).toContain("413 payload too large")
    expect(d.state.tasks.has("0.1")).toBe(false)
    // the other task goes on
    expect(d.live("0.2").status).toBe(TaskStatus.Dispatched)
  })

  it("R-DISP-10 the send's answer is the worker's receipt: its Dispatched tasks become Received and no ack timeout applies", () => {
    const d = started({ progressInterval: 1_000_000_000 })
    d.heartbeat("A", {}, 0)
    d.map(LOCAL, "0", "child", Driver.items(2), 0)
    const [send] = d.last.sends
    const out = d.delivered("A", send!.batch.seq, 10)
    expect(out.write!.updates.map((u) => [u.id, u.status])).toEqual([
      ["0.1", TaskStatus.Received],
      ["0.2", TaskStatus.Received]
    ])
    // long past ackTimeout, with heartbeats, the tasks stay where they are
    d.heartbeat("A", { freeSlots: 2 }, 14_000)
    d.heartbeat("A", { freeSlots: 2 }, 28_000)
    expect(d.live("0.1")).toMatchObject({ status: TaskStatus.Received, attempt: 0, redeliveries: 0 })
    // a delivery answer for another worker, or for a batch it never was sent, changes nothing
    expect(d.delivered("B", send!.batch.seq).write).toBeNull()
    expect(d.delivered("A", 999).write).toBeNull()
  })

  it("R-DISP-7 a failed send of the root waits for the local worker's next heartbeat", () => {
    const d = Driver.create({ kind: "mapReduce" })
    d.heartbeat(LOCAL)
    d.heartbeat("A")
    const out = d.sendFailed(LOCAL, 0)
    expect(out.sends).toEqual([])
    expect(d.live("0")).toMatchObject({ status: TaskStatus.Waiting, attempt: 1, failures: 0, redeliveries: 1 })
    expect(sentTo(d.heartbeat(LOCAL))).toEqual({ [LOCAL]: ["0"] })
  })

  it("R-DISP-8 a task not received within ackTimeout (15 s) goes back to Waiting with attempt + 1", () => {
    const d = started({ progressInterval: 60_000 })
    d.heartbeat("A", {}, 1_000)
    d.map(LOCAL, "0", "child", Driver.items(2))
    expect(d.last.wakeAt).toBe(16_000)
    d.report("A", [{ taskId: "0.2", attempt: 0, status: TaskStatus.Received }], 5_000)
    d.heartbeat("A", {}, 15_999)
    expect(d.live("0.1")).toMatchObject({ status: TaskStatus.Dispatched, attempt: 0 })
    const out = d.heartbeat("A", {}, 16_000)
    expect(sentTasks(out).map((task) => [task.id, task.attempt])).toEqual([["0.1", 1]])
    expect(d.live("0.1")).toMatchObject({ attempt: 1, redeliveries: 1, failures: 0 })
    // the received one stays
    expect(d.live("0.2")).toMatchObject({ status: TaskStatus.Received, attempt: 0, redeliveries: 0 })
  })

  it("R-DISP-8 after maxRedeliveries (default 5) returns the task fails as undeliverable", () => {
    const d = started()
    expect(d.state.config.maxRedeliveries).toBe(5)
    d.heartbeat("A")
    d.map(LOCAL, "0", "child", ["1"])
    for (let i = 1; i <= 5; i++) {
      const expiry = d.live("0.1").batch!.at + 15_000
      d.heartbeat("A", {}, expiry)
      // From the second miss in a row the worker rests before it gets the task again.
      if (d.worker("A").restUntil > expiry) d.heartbeat("A", {}, d.worker("A").restUntil)
      expect(d.live("0.1")).toMatchObject({ attempt: i, redeliveries: i, status: TaskStatus.Dispatched })
    }
    const out = d.heartbeat("A", {}, d.live("0.1").batch!.at + 15_000)
    expect(out.sends).toEqual([])
    expect(d.state.tasks.has("0.1")).toBe(false)
    expect(d.row("0.1")).toMatchObject({
      status: TaskStatus.Failed,
      failures: 0,
      redeliveries: 6
    })
    expect(d.error("0.1")).toEqual({
      tag: "TaskfoldError",
      reason: "undeliverable",
      message: "not received after 6 deliveries; the last: no receipt from A within ackTimeout (15000 ms)"
    })
    expect(d.state.runs.get(0)!.failed).toBe(1)
  })

  it("R-DISP-9 pull mode: workers take up to pageSize, never past maxInFlight", () => {
    const d = started({ dispatchMode: "pull", maxInFlight: 3 })
    d.heartbeat("A")
    d.map(LOCAL, "0", "child", Driver.items(6))
    expect(d.last.sends).toEqual([])
    expect(pull(d, "A", 2).ids).toEqual(["0.1", "0.2"])
    const second = pull(d, "A", 2)
    expect(second.ids).toEqual(["0.3"])
    expect(second.out.write!.updates.find((u) => u.id === "0.3")).toMatchObject({
      status: TaskStatus.Dispatched,
      worker: "A"
    })
    expect(pull(d, "A", 2).ids).toBeNull()
    d.running("A", "0.1")
    expect(pull(d, "A", 5).ids).toBeNull()
    d.succeed("A", "0.1")
    expect(pull(d, "A", 5).ids).toEqual(["0.4"])
    expect(d.state.subInFlight).toBe(3)
  })

  it("R-DISP-9 a pull from a worker that has not joined is rejected", () => {
    const d = started({ dispatchMode: "pull" })
    d.map(LOCAL, "0", "child", Driver.items(2))
    const event: MachineEvent = {
      _tag: "Pull",
      reply: d.replyId(),
      request: { instanceId: "inst-1", workerId: "Z", pageSize: 2 }
    }
    const value = replyValue(d.step([event]), event.reply)
    expect(value).toBeInstanceOf(RejectedError)
    expect((value as RejectedError).reason).toBe("unknown-worker")
    expect(d.state.waitingCount).toBe(2)
  })
})
