import { describe, expect, it } from "vitest"
import type { JobConfig } from "../model/config.ts"
import { TaskKind, TaskStatus } from "../model/status.ts"
import { Driver, LOCAL, sentTasks, sentTo } from "./test-driver.ts"

/** A broadcast instance with the local worker and A, B, C joined; C is lost before the root ends. */
const started = (overrides: Partial<JobConfig> = {}) => {
  const d = Driver.create({ kind: "broadcast", config: { progressInterval: 1_000_000_000, ...overrides } })
  d.heartbeat(LOCAL, {}, 0)
  d.heartbeat("C", {}, 0)
  d.heartbeat("A", {}, 10_000)
  d.heartbeat("B", {}, 10_000)
  d.running(LOCAL, "0", 10_000)
  d.step([], 15_001)
  expect(d.worker("C").lost).toBe(true)
  return d
}

const broadcastRows = (d: Driver) => [...d.store.values()].filter((row) => row.kind === TaskKind.Broadcast)

describe("broadcast", () => {
  it("R-BC-1 the root runs preProcess on the local worker", () => {
    const d = started()
    expect(sentTasks(d.outputs[0]!)).toEqual([
      expect.objectContaining({ id: "0", name: "ROOT", kind: TaskKind.Root, body: '{"p":1}' })
    ])
    expect(sentTo(d.outputs[0]!)).toEqual({ [LOCAL]: ["0"] })
  })

  it("R-BC-1 on success, one broadcast task per live worker, pinned to it, carrying preProcess's result", () => {
    const d = started()
    d.succeed(LOCAL, "0", '{"pre":true}', 15_002)
    expect(d.last.write!.inserts.map((row) => [row.id, row.name, row.kind, row.body])).toEqual([
      ["0.1", "BROADCAST", TaskKind.Broadcast, '{"pre":true}'],
      ["0.2", "BROADCAST", TaskKind.Broadcast, '{"pre":true}'],
      ["0.3", "BROADCAST", TaskKind.Broadcast, '{"pre":true}']
    ])
    expect(sentTo(d.last)).toEqual({ [LOCAL]: ["0.1"], A: ["0.2"], B: ["0.3"] })
    expect(d.live("0.2").pinnedTo).toBe("A")
    // a worker that joins later gets no broadcast task
    const late = d.heartbeat("D", {}, 15_003)
    expect(late.sends).toEqual([])
    expect(broadcastRows(d)).toHaveLength(3)
  })

  it("R-BC-1 R-FIN-3 on failure, no broadcast task is created and (by default) no postProcess: the instance fails naming the error", () => {
    const d = started({ taskRetries: 0 })
    d.fail(LOCAL, "0", "preProcess threw", 15_002)
    expect(d.row("0")).toMatchObject({ status: TaskStatus.Failed })
    expect(d.error("0")).toEqual({ tag: "Error", message: "preProcess threw" })
    expect(broadcastRows(d)).toEqual([])
    expect(d.store.has("0.F")).toBe(false)
    expect(d.last.outcome).toEqual({
      ok: false,
      result:
        "total: 1, succeeded: 0, failed: 1; 1 of 1 tasks failed, postProcess skipped; " +
        "first errors: 0 (ROOT, attempt 0): Error: preProcess threw",
      finishedAt: 15_002,
      counts: { created: 1, succeeded: 0, failed: 1 },
      errors: [{ taskId: "0", name: "ROOT", attempt: 0, error: { tag: "Error", message: "preProcess threw" } }]
    })
  })

  it("R-BC-1 R-FIN-8 with runReduceIfFail, a failed preProcess still creates no broadcast task, postProcess runs, and the instance is not ok", () => {
    const d = started({ taskRetries: 0, runReduceIfFail: true })
    d.fail(LOCAL, "0", "preProcess threw", 15_002)
    expect(broadcastRows(d)).toEqual([])
    expect(d.last.write!.inserts.map((row) => row.name)).toEqual(["FINAL"])
    expect(sentTo(d.last)).toEqual({ [LOCAL]: ["0.F"] })
    // even a postProcess that succeeds cannot make the work true: the root never ran to its end
    d.succeed(LOCAL, "0.F", '"all fine"', 16_000)
    expect(d.last.outcome).toMatchObject({ ok: false, counts: { created: 2, succeeded: 1, failed: 1 } })
    expect(d.last.outcome!.result).toContain("0 (ROOT, attempt 0): Error: preProcess threw")
  })

  it("R-BC-2 with runReduceIfFail, when all broadcast tasks are terminal, the final task runs postProcess and decides the instance", () => {
    const d = started({ taskRetries: 0, runReduceIfFail: true })
    d.succeed(LOCAL, "0", '"pre"', 15_002)
    d.succeed(LOCAL, "0.1", "1")
    d.fail("A", "0.2", "no disk")
    expect(d.state.tasks.has("0.F")).toBe(false)
    d.running("B", "0.3")
    expect(d.state.tasks.has("0.F")).toBe(false)
    d.succeed("B", "0.3", "3")
    expect(sentTasks(d.last)).toEqual([expect.objectContaining({ id: "0.F", name: "FINAL", kind: TaskKind.Final })])
    expect(sentTo(d.last)).toEqual({ [LOCAL]: ["0.F"] })
    // the default postProcess fails the instance with the counts when a task failed
    const out = d.report(
      LOCAL,
      [{ taskId: "0.F", attempt: 0, status: TaskStatus.Failed, error: "succeeded: 2, failed: 1" }],
      20_000
    )
    expect(out.applied).toBe(1)
    expect(d.last.outcome).toEqual({
      ok: false,
      result: "Error: succeeded: 2, failed: 1",
      finishedAt: 20_000,
      counts: { created: 5, succeeded: 3, failed: 2 },
      errors: [
        { taskId: "0.2", name: "BROADCAST", attempt: 0, error: { tag: "Error", message: "no disk" } },
        { taskId: "0.F", name: "FINAL", attempt: 0, error: { tag: "Error", message: "succeeded: 2, failed: 1" } }
      ]
    })
  })

  it("R-BC-2 with no failure the instance takes postProcess's result", () => {
    const d = started()
    d.succeed(LOCAL, "0", '"pre"', 15_002)
    d.succeed(LOCAL, "0.1", "1")
    d.succeed("A", "0.2", "2")
    d.succeed("B", "0.3", "3")
    d.succeed(LOCAL, "0.F", '"succeeded: 3, failed: 0"', 16_000)
    expect(d.last.outcome).toEqual({
      ok: true,
      result: '"succeeded: 3, failed: 0"',
      finishedAt: 16_000,
      counts: { created: 5, succeeded: 5, failed: 0 },
      errors: []
    })
  })

  it("R-BC-2 R-FIN-3 with runReduceIfFail false (the default) and a failed task, postProcess is skipped and the outcome names the first errors", () => {
    const d = started({ taskRetries: 0 })
    expect(d.state.config.runReduceIfFail).toBe(false)
    d.succeed(LOCAL, "0", '"pre"', 15_002)
    d.succeed(LOCAL, "0.1", "1")
    d.succeed("A", "0.2", "2")
    d.fail("B", "0.3", "x", 16_000)
    expect(d.last.outcome).toEqual({
      ok: false,
      result:
        "total: 4, succeeded: 3, failed: 1; 1 of 4 tasks failed, postProcess skipped; " +
        "first errors: 0.3 (BROADCAST, attempt 0): Error: x",
      finishedAt: 16_000,
      counts: { created: 4, succeeded: 3, failed: 1 },
      errors: [{ taskId: "0.3", name: "BROADCAST", attempt: 0, error: { tag: "Error", message: "x" } }]
    })
    expect(d.store.has("0.F")).toBe(false)
  })
})
