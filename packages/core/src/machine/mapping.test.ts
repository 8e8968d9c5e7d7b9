import { describe, expect, it } from "vitest"
import { RejectedError } from "../model/errors.ts"
import type { JobConfig } from "../model/config.ts"
import type { JobKind } from "../model/instance.ts"
import { TaskStatus } from "../model/status.ts"
import { Driver, LOCAL, replyValue, sentTo } from "./test-driver.ts"

const started = (kind: JobKind = "mapReduce", overrides: Partial<JobConfig> = {}) => {
  const d = Driver.create({
    kind,
    config: { localWorker: "exclude", retryBackoff: { kind: "fixed", ms: 0 }, ...overrides }
  })
  d.startRoot()
  d.heartbeat("A", { slots: 100 })
  return d
}

const reason = (value: unknown) =>
  value instanceof RejectedError ? value.reason : `not rejected: ${JSON.stringify(value)}`

describe("mapping", () => {
  it("R-MAP-1 stores all children of one call in one write, with the parent's child count", () => {
    const d = started()
    const value = d.map(LOCAL, "0", "child", Driver.items(3))
    expect(value).toEqual({ _tag: "Mapped", created: 3 })
    const write = d.last.write!
    expect(write.inserts.map((row) => [row.id, row.name, row.run])).toEqual([
      ["0.1", "child", 0],
      ["0.2", "child", 0],
      ["0.3", "child", 0]
    ])
    expect(write.updates.find((u) => u.id === "0")!.childCount).toBe(3)
    expect(write.instance.runs[0]!.created).toBe(4)
  })

  it("R-MAP-1 a call with one bad item stores none of it", () => {
    const d = started("mapReduce", { maxTaskBodyBytes: 8 })
    const value = d.map(LOCAL, "0", "child", ["1", "2", '"much too long"', "4"])
    expect(reason(value)).toBe("body-too-large")
    expect(d.last.write).toBeNull()
    expect(d.state.tasks.size).toBe(1)
    expect(d.live("0").childCount).toBe(0)
    expect(d.state.runs.get(0)!.created).toBe(1)
  })

  it("R-MAP-1 only a running task of that worker and attempt may map", () => {
    const d = started()
    d.map(LOCAL, "0", "child", ["1"])
    // "0.1" runs on A, not on the local worker; the root's attempt is 0, not 1
    const wrongWorker = d.mapEvent(LOCAL, "0.1", "x", ["1"], 0)
    const staleAttempt = d.mapEvent(LOCAL, "0", "x", ["1"], 1)
    const out = d.step([wrongWorker, staleAttempt])
    expect(reason(replyValue(out, wrongWorker.reply))).toBe("wrong-worker")
    expect(reason(replyValue(out, staleAttempt.reply))).toBe("stale-attempt")
    expect(out.write).toBeNull()
  })

  it("R-MAP-2 child ids derive from the parent id and a per-parent sequence", () => {
    const d = started()
    d.map(LOCAL, "0", "a", Driver.items(2))
    d.map(LOCAL, "0", "b", Driver.items(1))
    expect([...d.store.keys()].sort()).toEqual(["0", "0.1", "0.2", "0.3"])
    d.running("A", "0.2")
    d.map("A", "0.2", "c", Driver.items(2))
    expect(d.last.write!.inserts.map((row) => row.id)).toEqual(["0.2.1", "0.2.2"])
    expect(d.row("0.2.2").name).toBe("c")
  })

  it("R-MAP-2 a replayed map call (same attempt, same position) creates nothing again", () => {
    const d = started()
    const first = d.mapEvent(LOCAL, "0", "child", Driver.items(3))
    const call = { ...first, request: { ...first.request, from: 0 } }
    expect(replyValue(d.step([call]), call.reply)).toEqual({ _tag: "Mapped", created: 3 })
    const replay = { ...call, reply: 9_001 }
    const out = d.step([replay])
    expect(replyValue(out, replay.reply)).toEqual({ _tag: "Mapped", created: 0 })
    expect(out.write?.inserts ?? []).toEqual([])
    const next = d.mapEvent(LOCAL, "0", "child", Driver.items(2))
    const second = { ...next, request: { ...next.request, from: 3 } }
    expect(replyValue(d.step([second]), second.reply)).toEqual({ _tag: "Mapped", created: 2 })
    expect([...d.store.keys()].sort()).toEqual(["0", "0.1", "0.2", "0.3", "0.4", "0.5"])
  })

  it("R-MAP-2 a retried mapper that maps the same items again creates no duplicates", () => {
    const d = started()
    d.map(LOCAL, "0", "child", Driver.items(2))
    d.map(LOCAL, "0", "child", Driver.items(1))
    d.fail(LOCAL, "0")
    expect(d.live("0")).toMatchObject({ attempt: 1, status: TaskStatus.Dispatched })
    d.running(LOCAL, "0")
    expect(d.map(LOCAL, "0", "child", Driver.items(2))).toEqual({ _tag: "Mapped", created: 0 })
    expect(d.map(LOCAL, "0", "child", Driver.items(1))).toEqual({ _tag: "Mapped", created: 0 })
    // the retry maps one item more than the first attempt: only that one is new
    expect(d.map(LOCAL, "0", "child", Driver.items(1))).toEqual({ _tag: "Mapped", created: 1 })
    expect(d.last.write!.inserts.map((row) => row.id)).toEqual(["0.4"])
    expect(d.state.runs.get(0)!.created).toBe(5)
    expect([...d.store.keys()].sort()).toEqual(["0", "0.1", "0.2", "0.3", "0.4"])
  })

  it("R-MAP-3 ROOT and FINAL are reserved names", () => {
    const d = started()
    for (const name of ["ROOT", "FINAL"]) {
      const value = d.map(LOCAL, "0", name, ["1"])
      expect(reason(value)).toBe("reserved-name")
      expect((value as RejectedError).message).toContain(name)
      expect(d.last.write).toBeNull()
    }
    expect(d.state.runs.get(0)!.created).toBe(1)
  })

  it("R-MAP-3 an empty list is a no-op", () => {
    const d = started()
    expect(d.map(LOCAL, "0", "child", [])).toEqual({ _tag: "Mapped", created: 0 })
    expect(d.last.write).toBeNull()
    expect(d.live("0").childCount).toBe(0)
    expect(d.map(LOCAL, "0", "child", ["1"])).toEqual({ _tag: "Mapped", created: 1 })
    expect(d.last.write!.inserts.map((row) => row.id)).toEqual(["0.1"])
  })

  it("R-MAP-3 an item over maxTaskBodyBytes (default 64 KiB, encoded) fails the call clearly", () => {
    const d = started()
    expect(d.state.config.maxTaskBodyBytes).toBe(65536)
    expect(d.map(LOCAL, "0", "ok", ["x".repeat(65536)])).toEqual({ _tag: "Mapped", created: 1 })
    const tooLong = d.map(LOCAL, "0", "big", ["1", "x".repeat(65537)])
    expect(reason(tooLong)).toBe("body-too-large")
    expect((tooLong as RejectedError).message).toBe("item 1 is 65537 bytes; maxTaskBodyBytes is 65536")
    // 32 769 characters, 65 538 bytes in UTF-8
    expect(reason(d.map(LOCAL, "0", "big", ["é".repeat(32769)]))).toBe("body-too-large")
    expect(reason(d.map(LOCAL, "0", "big", [new Uint8Array(65537)]))).toBe("body-too-large")
    expect(d.map(LOCAL, "0", "bytes", [new Uint8Array(65536)])).toEqual({ _tag: "Mapped", created: 1 })
    expect([...d.store.values()].map((row) => row.name).sort()).toEqual(["ROOT", "bytes", "ok"])
  })

  it("R-MAP-4 map suspends above maxWaitingTasks and resumes once the dispatcher drains below half", () => {
    // The local worker runs the root and two children; the other children wait until A takes them.
    const d = Driver.create({ config: { maxWaitingTasks: 4, queueAllowance: 0, progressInterval: 1_000_000_000 } })
    d.startRoot({ slots: 3 })
    expect(d.map(LOCAL, "0", "child", Driver.items(7))).toEqual({ _tag: "Mapped", created: 7 })
    expect(sentTo(d.last)).toEqual({ [LOCAL]: ["0.1", "0.2"] })
    expect(d.state.waitingCount).toBe(5)
    const second = d.mapEvent(LOCAL, "0", "more", Driver.items(3))
    const third = d.mapEvent(LOCAL, "0", "last", Driver.items(1))
    let out = d.step([second])
    expect(out.replies).toEqual([])
    expect(out.write).toBeNull()
    // a call behind a suspended one waits too
    out = d.step([third])
    expect(out.replies).toEqual([])
    expect(d.state.pendingMaps.size).toBe(2)
    // A takes 2: 3 left waiting, within the bound but not below half of it; the calls stay suspended
    out = d.heartbeat("A", { slots: 2 })
    expect(sentTo(out)).toEqual({ A: ["0.3", "0.4"] })
    expect(out.replies.map((reply) => reply.value)).toEqual([{ _tag: "Heartbeat", reply: { dispatchMode: "push" } }])
    // A takes 2 more: 1 left < 2; the second call goes in, which fills the queue again; the third stays
    out = d.heartbeat("A", { slots: 4 })
    expect(sentTo(out)).toEqual({ A: ["0.5", "0.6"] })
    expect(replyValue(out, second.reply)).toEqual({ _tag: "Mapped", created: 3 })
    expect(out.replies.some((reply) => reply.id === third.reply)).toBe(false)
    expect(out.write!.inserts.map((row) => row.id)).toEqual(["0.8", "0.9", "0.10"])
    expect(d.state.waitingCount).toBe(4)
    // A finishes three: three more go, one waits; the third call goes in
    d.report(
      "A",
      ["0.3", "0.4", "0.5"].map((taskId) => ({ taskId, attempt: 0, status: TaskStatus.Succeeded, result: "1" }))
    )
    out = d.last
    expect(sentTo(out)).toEqual({ A: ["0.7", "0.8", "0.9"] })
    expect(replyValue(out, third.reply)).toEqual({ _tag: "Mapped", created: 1 })
    expect(d.state.pendingMaps.size).toBe(0)
    expect(d.state.waitingCount).toBe(2)
  })

  it("R-MAP-6 a call from past the parent's children is refused with map-gap and creates nothing, using up no child number", () => {
    const d = started()
    const call = (from: number, n: number) => {
      const event = d.mapEvent(LOCAL, "0", "child", Driver.items(n))
      return { ...event, request: { ...event.request, from } }
    }
    const first = call(0, 2)
    expect(replyValue(d.step([first]), first.reply)).toEqual({ _tag: "Mapped", created: 2 })
    // a call whose predecessor (items 3..4) never got through
    const gap = call(4, 1)
    const out = d.step([gap])
    const refused = replyValue(out, gap.reply)
    expect(reason(refused)).toBe("map-gap")
    expect((refused as RejectedError).message).toContain("2 children")
    expect(out.write).toBeNull()
    expect(d.live("0").childCount).toBe(2)
    // the lost call, retried, and then the next one: numbers 3, 4, 5 with no hole
    const lost = call(2, 2)
    expect(replyValue(d.step([lost]), lost.reply)).toEqual({ _tag: "Mapped", created: 2 })
    const again = call(4, 1)
    expect(replyValue(d.step([again]), again.reply)).toEqual({ _tag: "Mapped", created: 1 })
    expect([...d.store.keys()].sort()).toEqual(["0", "0.1", "0.2", "0.3", "0.4", "0.5"])
    expect(d.state.runs.get(0)!.created).toBe(6)
  })

  it("R-MAP-6 a repeated call identical to one suspended by back-pressure joins it: both are answered, the children are made once", () => {
    // The local worker runs the root and two children; five more wait, over the bound of 4.
    const d = Driver.create({ config: { maxWaitingTasks: 4, queueAllowance: 0, progressInterval: 1_000_000_000 } })
    d.startRoot({ slots: 3 })
    expect(d.map(LOCAL, "0", "child", Driver.items(7))).toEqual({ _tag: "Mapped", created: 7 })
    expect(d.state.waitingCount).toBe(5)
    const event = d.mapEvent(LOCAL, "0", "more", Driver.items(2))
    const call = { ...event, request: { ...event.request, from: 7 } }
    expect(d.step([call]).replies).toEqual([])
    // the worker's answer was lost on the way; it sends the same call again
    const retry = { ...call, reply: d.replyId() }
    expect(d.step([retry]).replies).toEqual([])
    expect(d.state.pendingMaps.size).toBe(1)
    expect(d.state.runs.get(0)!.pendingMaps).toBe(1)
    // the queue drains: one answer per copy, the same one, and two children, not four
    const out = d.heartbeat("A", { slots: 10 })
    expect(replyValue(out, call.reply)).toEqual({ _tag: "Mapped", created: 2 })
    expect(replyValue(out, retry.reply)).toEqual({ _tag: "Mapped", created: 2 })
    expect(out.write!.inserts.map((row) => row.id)).toEqual(["0.8", "0.9"])
    expect(d.state.runs.get(0)).toMatchObject({ created: 10, pendingMaps: 0 })
    // a copy arriving after the answer is a replay: answered, nothing made again
    const late = { ...call, reply: d.replyId() }
    expect(replyValue(d.step([late]), late.reply)).toEqual({ _tag: "Mapped", created: 0 })
    expect(d.state.runs.get(0)!.created).toBe(10)
  })

  it("R-MAP-5 standalone and broadcast jobs cannot map; map jobs can", () => {
    for (const kind of ["standalone", "broadcast"] as const) {
      const d = started(kind)
      const value = d.map(LOCAL, "0", "child", ["1"])
      expect(reason(value)).toBe("map-not-allowed")
      expect((value as RejectedError).message).toContain(kind)
      expect(d.last.write).toBeNull()
    }
    expect(started("map").map(LOCAL, "0", "child", ["1"])).toEqual({ _tag: "Mapped", created: 1 })
  })
})
