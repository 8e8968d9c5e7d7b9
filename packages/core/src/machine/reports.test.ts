import { describe, expect, it } from "vitest"
import { RejectedError } from "../model/errors.ts"
import { TaskStatus } from "../model/status.ts"
import { Driver, LOCAL, replyValue, sentTasks } from "./test-driver.ts"

/** A mapReduce instance whose root runs on the local worker and mapped "0.1", "0.2" onto worker A. */
const withChildren = (taskRetries = 1) => {
  const d = Driver.create({ config: { localWorker: "exclude", taskRetries, retryBackoff: { kind: "fixed", ms: 0 } } })
  d.startRoot()
  d.heartbeat("A")
  d.map(LOCAL, "0", "child", Driver.items(2))
  return d
}

describe("reports", () => {
  it("R-STATE-1 drops a report whose status is lower than the task's current status", () => {
    const d = withChildren()
    d.running("A", "0.1")
    expect(d.live("0.1").status).toBe(TaskStatus.Running)
    const reply = d.report("A", [{ taskId: "0.1", attempt: 0, status: TaskStatus.Received }])
    expect(reply).toEqual({ applied: 0, dropped: 1, unknown: [], rejected: [] })
    expect(d.live("0.1").status).toBe(TaskStatus.Running)
    expect(d.last.write).toBeNull()
    expect(d.row("0.1").status).toBe(TaskStatus.Running)
  })

  it("R-STATE-1 a Succeeded report that overtakes Running wins", () => {
    const d = withChildren()
    expect(d.live("0.1").status).toBe(TaskStatus.Dispatched)
    const first = d.report("A", [{ taskId: "0.1", attempt: 0, status: TaskStatus.Succeeded, result: "11" }])
    expect(first.applied).toBe(1)
    const late = d.report("A", [{ taskId: "0.1", attempt: 0, status: TaskStatus.Running }])
    expect(late.applied).toBe(0)
    expect(late.unknown).toEqual(["0.1"])
    expect(d.last.write).toBeNull()
    expect(d.row("0.1")).toMatchObject({ status: TaskStatus.Succeeded, result: "11" })
    expect(d.state.byName.get("child")).toMatchObject({ running: 0, succeeded: 1 })
  })

  it("R-STATE-1 within one batch, a Running report after Succeeded does not bring the task back", () => {
    const d = withChildren()
    const reply = d.report("A", [
      { taskId: "0.2", attempt: 0, status: TaskStatus.Succeeded, result: "22" },
      { taskId: "0.2", attempt: 0, status: TaskStatus.Running }
    ])
    expect(reply.applied).toBe(1)
    expect(reply.unknown).toEqual(["0.2"])
    expect(d.row("0.2").status).toBe(TaskStatus.Succeeded)
    expect(d.state.tasks.has("0.2")).toBe(false)
  })

  it("R-STATE-2 every dispatch carries the task's attempt number", () => {
    const d = withChildren(2)
    const first = d.outputs.find((out) => out.sends.some((send) => send.workerId === "A"))!
    expect(sentTasks(first).map((t) => [t.id, t.attempt])).toEqual([
      ["0.1", 0],
      ["0.2", 0]
    ])
    d.fail("A", "0.1")
    // fixed backoff of 0 ms: the retry is dispatched in the same step with the next attempt
    expect(sentTasks(d.last).map((t) => [t.id, t.attempt])).toEqual([["0.1", 1]])
    d.fail("A", "0.1")
    expect(sentTasks(d.last).map((t) => [t.id, t.attempt])).toEqual([["0.1", 2]])
    expect(d.row("0.1")).toMatchObject({ attempt: 2, status: TaskStatus.Dispatched, worker: "A" })
  })

  it("R-STATE-2 a report for an older attempt is dropped and changes nothing", () => {
    const d = withChildren()
    d.fail("A", "0.1")
    expect(d.live("0.1")).toMatchObject({ attempt: 1, status: TaskStatus.Dispatched })
    const reply = d.report("A", [{ taskId: "0.1", attempt: 0, status: TaskStatus.Succeeded, result: "late" }])
    expect(reply).toEqual({ applied: 0, dropped: 1, unknown: [], rejected: [] })
    expect(d.last.write).toBeNull()
    expect(d.live("0.1")).toMatchObject({ attempt: 1, status: TaskStatus.Dispatched, result: null })
    expect(d.state.runs.get(0)!.succeeded).toBe(0)
  })

  it("R-STATE-2 order comes from attempts and statuses, never from times", () => {
    const d = withChildren()
    d.fail("A", "0.1", "boom", 10_000)
    // the tracker's clock went back: the current attempt's report still applies, the old one still does not
    const reply = d.report(
      "A",
      [
        { taskId: "0.1", attempt: 0, status: TaskStatus.Succeeded, result: "old" },
        { taskId: "0.1", attempt: 1, status: TaskStatus.Succeeded, result: "new" }
      ],
      5_000
    )
    expect(reply).toMatchObject({ applied: 1, dropped: 1 })
    expect(d.row("0.1")).toMatchObject({ status: TaskStatus.Succeeded, attempt: 1, result: "new" })
  })

  it("R-STATE-2 a report for an attempt not dispatched yet, or from another worker, is rejected", () => {
    const d = withChildren()
    d.heartbeat("B")
    const reply = d.report("A", [{ taskId: "0.1", attempt: 3, status: TaskStatus.Running }])
    expect(reply.applied).toBe(0)
    expect(reply.rejected.map((r) => [r.taskId, r.error.reason])).toEqual([["0.1", "stale-attempt"]])
    const other = d.report("B", [{ taskId: "0.1", attempt: 0, status: TaskStatus.Succeeded, result: "1" }])
    expect(other.rejected.map((r) => [r.taskId, r.error.reason])).toEqual([["0.1", "wrong-worker"]])
    expect(other.rejected[0]!.error.message).toContain("0.1")
    expect(d.live("0.1").status).toBe(TaskStatus.Dispatched)
    expect(d.last.write).toBeNull()
  })

  it("R-STATE-3 a repeated Running report changes nothing", () => {
    const d = withChildren()
    d.running("A", "0.1")
    const counters = { ...d.state.byName.get("child")! }
    const reply = d.running("A", "0.1")
    expect(reply).toEqual({ applied: 0, dropped: 1, unknown: [], rejected: [] })
    expect(d.last.write).toBeNull()
    expect(d.state.byName.get("child")).toEqual(counters)
    expect(d.worker("A").running).toBe(1)
  })

  it("R-STATE-3 a repeated Failed report does not retry twice", () => {
    const d = withChildren(3)
    d.running("A", "0.1")
    const failed = { taskId: "0.1", attempt: 0, status: TaskStatus.Failed, error: "boom" } as const
    expect(d.report("A", [failed]).applied).toBe(1)
    expect(d.live("0.1")).toMatchObject({ attempt: 1, failures: 1 })
    const again = d.report("A", [failed])
    expect(again.dropped).toBe(1)
    expect(d.live("0.1")).toMatchObject({ attempt: 1, failures: 1 })
    expect(d.row("0.1")).toMatchObject({ attempt: 1, failures: 1 })
  })

  it("R-STATE-3 a repeated Succeeded report counts once and stores one result", () => {
    const d = withChildren()
    const done = { taskId: "0.1", attempt: 0, status: TaskStatus.Succeeded, result: "1" } as const
    const first = d.report("A", [done, done])
    expect(first.applied).toBe(1)
    expect(d.last.write!.instance.runs[0]).toMatchObject({ created: 3, succeeded: 1, failed: 0 })
    const again = d.report("A", [done])
    expect(again.applied).toBe(0)
    expect(d.last.write).toBeNull()
    expect(d.state.runs.get(0)).toMatchObject({ succeeded: 1, failed: 0 })
    expect(d.state.byName.get("child")).toMatchObject({ total: 2, succeeded: 1 })
    expect(d.worker("A").succeeded).toBe(1)
  })

  it("R-STATE-4 a report for an unknown task is listed as unknown and changes nothing", () => {
    const d = withChildren()
    const before = { tasks: d.state.tasks.size, run: { ...d.state.runs.get(0)! } }
    const reply = d.report("A", [
      { taskId: "9.9", attempt: 0, status: TaskStatus.Succeeded, result: "1" },
      { taskId: "0.2", attempt: 0, status: TaskStatus.Running }
    ])
    expect(reply).toEqual({ applied: 1, dropped: 0, unknown: ["9.9"], rejected: [] })
    expect(d.state.tasks.size).toBe(before.tasks)
    expect(d.state.runs.get(0)).toMatchObject({ created: before.run.created, succeeded: 0, failed: 0 })
    expect(d.last.write!.updates.map((u) => u.id)).toEqual(["0.2"])
    expect(d.last.sends).toEqual([])
    const alone = d.report("A", [{ taskId: "nope", attempt: 0, status: TaskStatus.Failed, error: "x" }])
    expect(alone.unknown).toEqual(["nope"])
    expect(d.last.write).toBeNull()
  })

  it("R-STATE-4 calls for an unknown task are rejected with a clear error", () => {
    const d = withChildren()
    const map = d.mapEvent("A", "7.7", "x", ["1"], 0)
    const kill = { _tag: "Kill", taskId: "7.7", reason: "why", reply: d.replyId() } as const
    const out = d.step([map, kill])
    for (const id of [map.reply, kill.reply]) {
      const value = replyValue(out, id)
      expect(value).toBeInstanceOf(RejectedError)
      expect((value as RejectedError).reason).toBe("unknown-task")
      expect((value as RejectedError).message).toContain("7.7")
    }
    expect(out.write).toBeNull()
    expect(d.state.tasks.size).toBe(3)
  })

  it("R-RETRY-5 a reported error keeps its tag, reason, message and causes; plain text becomes an Error with that message; the stored row holds its JSON", () => {
    const d = withChildren(0)
    const structured = {
      tag: "ParseError",
      message: "bad row 7",
      cause: { tag: "SyntaxError", message: "Unexpected token", cause: { tag: "string", message: "deep" } }
    }
    d.report("A", [
      { taskId: "0.1", attempt: 0, status: TaskStatus.Failed, error: structured },
      { taskId: "0.2", attempt: 0, status: TaskStatus.Failed, error: "plain words" }
    ])
    expect(d.error("0.1")).toEqual(structured)
    expect(JSON.parse(d.row("0.1").lastError!)).toEqual(structured)
    expect(d.error("0.2")).toEqual({ tag: "Error", message: "plain words" })
    // a Failed report with no error at all still names one
    const e = withChildren(0)
    e.report("A", [{ taskId: "0.1", attempt: 0, status: TaskStatus.Failed }])
    expect(e.error("0.1")).toEqual({ tag: "Error", message: "failed" })
  })
})
