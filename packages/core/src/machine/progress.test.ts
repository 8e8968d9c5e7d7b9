import { describe, expect, it } from "vitest"
import type { JobConfig } from "../model/config.ts"
import { RejectedError } from "../model/errors.ts"
import { isTerminal, TaskStatus } from "../model/status.ts"
import type { TaskRow } from "../model/task.ts"
import type { MachineEvent } from "./state.ts"
import { Driver, LOCAL, replyValue, storeCounts } from "./test-driver.ts"

const started = (overrides: Partial<JobConfig> = {}) => {
  const d = Driver.create({ kind: "mapReduce", config: { localWorker: "exclude", ...overrides } })
  d.startRoot()
  return d
}

const append = (
  d: Driver,
  taskId: string,
  entries: Record<string, unknown>,
  workerId = LOCAL
): MachineEvent & { _tag: "Context" } => ({
  _tag: "Context",
  reply: d.replyId(),
  request: { instanceId: "inst-1", workerId, taskId, attempt: d.attempt(taskId), entries: entries as never }
})

/** Root running on the local worker; "a" tasks 0.1, 0.3 on A (2 slots), 0.2 on B (1 slot), 0.4 waiting. */
const scenario = () => {
  const d = started({ queueAllowance: 0, taskRetries: 0 })
  d.heartbeat("A", { slots: 2 })
  d.heartbeat("B", { slots: 1 })
  d.map(LOCAL, "0", "a", Driver.items(4))
  d.running("A", "0.1")
  d.report("B", [{ taskId: "0.2", attempt: 0, status: TaskStatus.Received }])
  return d
}

describe("progress", () => {
  it("R-PROG-1 progress per task name and per worker", () => {
    const d = scenario()
    const first = d.step([], 5_000).progress!
    expect(first.byName).toEqual({
      ROOT: { total: 1, waiting: 0, dispatched: 0, running: 1, succeeded: 0, failed: 0 },
      a: { total: 4, waiting: 1, dispatched: 1, running: 2, succeeded: 0, failed: 0 }
    })
    expect(first.byWorker).toEqual({
      [LOCAL]: { assigned: 1, running: 1, succeeded: 0, failed: 0 },
      A: { assigned: 2, running: 1, succeeded: 0, failed: 0 },
      B: { assigned: 1, running: 1, succeeded: 0, failed: 0 }
    })
    expect(first).toMatchObject({ instanceId: "inst-1", at: 5_000, outcome: null })
    d.succeed("A", "0.3")
    d.fail("B", "0.2")
    const second = d.step([], 10_000).progress!
    expect(second.byName["a"]).toEqual({ total: 4, waiting: 0, dispatched: 1, running: 1, succeeded: 1, failed: 1 })
    expect(second.byWorker).toEqual({
      [LOCAL]: { assigned: 1, running: 1, succeeded: 0, failed: 0 },
      A: { assigned: 2, running: 1, succeeded: 1, failed: 0 },
      B: { assigned: 0, running: 0, succeeded: 0, failed: 1 }
    })
  })

  it("R-PROG-1 totals equal what the store holds, at every step", () => {
    const d = scenario()
    d.succeed("A", "0.3")
    d.fail("B", "0.2")
    d.map("A", "0.1", "b", Driver.items(3))
    d.heartbeat("A", { idle: true })
    d.step([], 5_000)
    for (const out of d.outputs) {
      if (out.progress !== null) expect(out.progress.byName).toEqual(storeCounts(d.store.values()))
    }
    expect(d.outputs.filter((out) => out.progress !== null)).toHaveLength(1)
  })

  it("R-PROG-1 after a restart, progress is rebuilt to equal the store", () => {
    const d = scenario()
    d.succeed("A", "0.3")
    d.fail("B", "0.2")
    const rows = [...d.store.values()]
    const live = rows.filter((row) => !isTerminal(row.status)).sort((x, y) => x.seq - y.seq)
    const terminal = new Map<string, { name: string; worker: string | null; status: number; count: number }>()
    for (const row of rows.filter((r: TaskRow) => isTerminal(r.status))) {
      const key = `${row.name}/${row.worker}/${row.status}`
      const entry = terminal.get(key) ?? { name: row.name, worker: row.worker, status: row.status, count: 0 }
      entry.count++
      terminal.set(key, entry)
    }
    const instance = d.outputs.findLast((out) => out.write !== null)!.write!.instance
    const restored = Driver.restore({ instance, live, terminal: [...terminal.values()] }, LOCAL, 1_000)
    for (const row of rows) restored.store.set(row.id, row)
    const out = restored.step([], 6_000)
    expect(out.progress!.byName).toEqual(storeCounts(restored.store.values()))
    expect(out.progress!.byName["a"]).toMatchObject({ total: 4, succeeded: 1, failed: 1 })
  })

  it("R-PROG-2 progress is pushed every progressInterval (default 5 s)", () => {
    const d = started()
    expect(d.state.config.progressInterval).toBe(5_000)
    expect(d.outputs.map((out) => out.progress)).toEqual([null, null])
    expect(d.last.wakeAt).toBe(5_000)
    expect(d.step([], 4_999).progress).toBeNull()
    expect(d.step([], 5_000).progress).toMatchObject({ at: 5_000 })
    expect(d.last.wakeAt).toBe(10_000)
    expect(d.step([], 9_000).progress).toBeNull()
    expect(d.step([], 10_001).progress).toMatchObject({ at: 10_001 })
  })

  it("R-PROG-2 progress is pushed on finish, with the outcome; then no more", () => {
    const d = started()
    d.heartbeat("A")
    d.map(LOCAL, "0", "a", ["1"])
    d.succeed(LOCAL, "0")
    d.succeed("A", "0.1")
    const out = d.step(
      [d.reportsEvent(LOCAL, [{ taskId: "0.F", attempt: 0, status: TaskStatus.Succeeded, result: "9" }])],
      1_000
    )
    expect(out.outcome).toEqual({
      ok: true,
      result: "9",
      finishedAt: 1_000,
      counts: { created: 3, succeeded: 3, failed: 0 },
      errors: []
    })
    expect(out.progress).toMatchObject({ at: 1_000, outcome: out.outcome })
    expect(out.progress!.byName["FINAL"]).toEqual({
      total: 1,
      waiting: 0,
      dispatched: 0,
      running: 0,
      succeeded: 1,
      failed: 0
    })
    expect(d.step([], 20_000).progress).toBeNull()
  })

  it("R-CTX-1 a running task appends key/values to the instance context; later batches carry it", () => {
    const d = started()
    d.heartbeat("A")
    const event = append(d, "0", { region: "eu", n: 3 })
    const out = d.step([event])
    expect(replyValue(out, event.reply)).toEqual({ _tag: "Context", accepted: true })
    expect(d.state.context).toEqual({ region: "eu", n: 3 })
    expect(out.write!.instance.context).toEqual({ region: "eu", n: 3 })
    d.map(LOCAL, "0", "a", ["1"])
    expect(d.last.sends[0]!.batch.context).toEqual({ region: "eu", n: 3 })
  })

  it("R-CTX-1 an append that would pass maxContextBytes is dropped with a warning", () => {
    const d = started({ maxContextBytes: 30 })
    const ok = append(d, "0", { a: "1234567890" })
    expect(replyValue(d.step([ok]), ok.reply)).toEqual({ _tag: "Context", accepted: true })
    // {"a":"1234567890"} is 18 bytes; with "b" it would be 34
    const tooMuch = append(d, "0", { b: "123456789" })
    const out = d.step([tooMuch])
    expect(replyValue(out, tooMuch.reply)).toEqual({ _tag: "Context", accepted: false })
    expect(out.warnings).toEqual([
      "context append from task 0 dropped: the context would be 34 bytes, maxContextBytes is 30"
    ])
    expect(d.state.context).toEqual({ a: "1234567890" })
    expect(out.write).toBeNull()
    // exactly at the limit: {"a":"1234567890","b":"12345"} is 30 bytes
    const exact = append(d, "0", { b: "12345" })
    expect(replyValue(d.step([exact]), exact.reply)).toEqual({ _tag: "Context", accepted: true })
  })

  it("R-CTX-1 the default limit is 8 KiB of JSON", () => {
    const d = started()
    expect(d.state.config.maxContextBytes).toBe(8_192)
    const big = append(d, "0", { k: "x".repeat(8_192 - 10) })
    expect(replyValue(d.step([big]), big.reply)).toEqual({ _tag: "Context", accepted: true })
    const more = append(d, "0", { l: "y" })
    const out = d.step([more])
    expect(replyValue(out, more.reply)).toEqual({ _tag: "Context", accepted: false })
    expect(out.warnings).toHaveLength(1)
  })

  it("R-CTX-1 only a running task of that worker may append", () => {
    const d = started()
    const event: MachineEvent = {
      _tag: "Context",
      reply: d.replyId(),
      request: { instanceId: "inst-1", workerId: "A", taskId: "0", attempt: 0, entries: { x: 1 } }
    }
    const value = replyValue(d.step([event]), event.reply)
    expect(value).toBeInstanceOf(RejectedError)
    expect((value as RejectedError).reason).toBe("wrong-worker")
    expect(d.state.context).toEqual({})
  })
})
