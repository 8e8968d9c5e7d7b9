import { describe, expect, it } from "vitest"
import type { JobConfig } from "../model/config.ts"
import { TaskStatus } from "../model/status.ts"
import { progressSnapshot } from "./progress.ts"
import { Driver, LOCAL, sentTo } from "./test-driver.ts"

const started = (overrides: Partial<JobConfig> = {}) => {
  const d = Driver.create({ config: { localWorker: "exclude", queueAllowance: 0, ...overrides } })
  d.startRoot()
  return d
}

const sendsTo = (d: Driver, workerId: string) => d.last.sends.filter((send) => send.workerId === workerId)

/** Every batch of the last step sent to `workerId` fails as a send that got no answer. */
const failSendsTo = (d: Driver, workerId: string) => {
  for (const send of sendsTo(d, workerId)) d.sendFailed(workerId, send.batch.seq, false, "no answer")
}

describe("bounded peers", () => {
  it("R-WIRE-3 a worker announcing more slots than maxWorkerSlots is believed up to the cap", () => {
    const d = started({ maxWorkerSlots: 8 })
    d.heartbeat("A", { slots: 65_536 })
    d.map(LOCAL, "0", "child", Driver.items(100))
    expect(sentTo(d.last)["A"]).toHaveLength(8)
    expect(d.worker("A").slots).toBe(8)
  })

  it("R-WIRE-3 a worker whose deliveries get no receipt twice in a row rests, is probed a task at a time, and the missed tasks go to others", () => {
    const d = started({ heartbeatInterval: 1_000, dispatchBatchSize: 4 })
    d.heartbeat("A", { slots: 4 })
    d.heartbeat("B", { slots: 4 })
    d.map(LOCAL, "0", "child", Driver.items(16))
    const firstToA = sentTo(d.last)["A"]!
    expect(firstToA).toHaveLength(4)
    failSendsTo(d, "A")
    // One miss: the worker gets work again at its next heartbeat (R-DISP-7); the missed tasks went to B.
    expect(d.worker("A").strikes).toBe(1)
    d.heartbeat("A", { slots: 4 })
    const secondToA = sentTo(d.last)["A"] ?? []
    expect(secondToA.some((id) => firstToA.includes(id))).toBe(false)
    failSendsTo(d, "A")
    expect(d.worker("A").strikes).toBe(2)
    expect(progressSnapshot(d.state, d.now).byWorker["A"]).toMatchObject({ unhealthy: true })
    expect(d.last.warnings.some((line) => line.includes("worker A is unhealthy"))).toBe(true)
    // Resting: its heartbeats bring it nothing until the rest is over.
    d.heartbeat("A", { slots: 4 }, d.now + 500)
    expect(sendsTo(d, "A")).toEqual([])
    expect(d.last.wakeAt).toBe(d.worker("A").restUntil)
    // Then one task at a time.
    d.step([], d.worker("A").restUntil)
    expect(sentTo(d.last)["A"]).toHaveLength(1)
    const probe = sendsTo(d, "A")[0]!
    d.delivered("A", probe.batch.seq)
    // A receipt makes it healthy again.
    expect(d.worker("A").strikes).toBe(0)
    expect(progressSnapshot(d.state, d.now).byWorker["A"]?.unhealthy).toBeUndefined()
  })

  it("R-WIRE-3 the rest doubles with each miss, up to 16 heartbeat intervals", () => {
    const d = started({ heartbeatInterval: 1_000, maxRedeliveries: 100 })
    // B has no room but keeps the local worker out, so the task can only go to A.
    d.heartbeat("B", { slots: 0 })
    d.heartbeat("A", { slots: 1 })
    d.map(LOCAL, "0", "child", Driver.items(1))
    const rests: number[] = []
    for (let miss = 1; miss <= 8; miss++) {
      failSendsTo(d, "A")
      rests.push(d.worker("A").restUntil === 0 ? 0 : d.worker("A").restUntil - d.now)
      d.heartbeat("B", { slots: 0 }, Math.max(d.now, d.worker("A").restUntil))
      d.heartbeat("A", { slots: 1 })
    }
    expect(rests).toEqual([0, 1_000, 2_000, 4_000, 8_000, 16_000, 16_000, 16_000])
  })

  it("R-WIRE-3 R-DISP-5 an unhealthy worker does not keep sub-tasks off the local worker", () => {
    const d = started()
    d.heartbeat("A", { slots: 4 })
    d.map(LOCAL, "0", "child", Driver.items(3))
    failSendsTo(d, "A")
    d.heartbeat("A", { slots: 4 })
    failSendsTo(d, "A")
    // The local worker took what A missed, and A is probed with one task after its rest.
    const local = d.state.workerList.find((worker) => worker.isLocal)!
    expect(local.held).toBeGreaterThan(1)
    d.step([], d.worker("A").restUntil)
    const held = ["0.1", "0.2", "0.3"].map((id) => d.live(id)).filter((task) => task.worker?.id === "A")
    expect(held.length).toBeLessThanOrEqual(1)
    for (const id of ["0.1", "0.2", "0.3"]) expect(d.live(id).status).not.toBe(TaskStatus.Failed)
  })
})
