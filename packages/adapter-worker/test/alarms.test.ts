import type { TaskRow } from "@taskfold/core/adapter"
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test"
import { afterEach, describe, expect, it } from "vitest"
import { finished, freshId, sleep, status, submit, trackerOf, waitUntil, within } from "./support.ts"
import { nextStart, outcomeOf, watch, type TaskfoldTracker } from "./worker.ts"

/** Timers that would otherwise also wake the object are pushed far out, so the one under test is the alarm's. */
const quiet = { progressInterval: 600_000, heartbeatInterval: 60_000, workerTimeout: 600_000 }

const alarmOf = (instanceId: string) =>
  runInDurableObject(trackerOf(instanceId), (_object: TaskfoldTracker, state) => state.storage.getAlarm())

const taskOf = (instanceId: string, taskId: string) =>
  runInDurableObject(trackerOf(instanceId), (_object: TaskfoldTracker, state) => {
    const row = state.storage.sql
      .exec(
        "SELECT status, attempt, failures, redeliveries, due_at AS dueAt, worker FROM taskfold_tasks WHERE id = ?",
        taskId
      )
      .toArray()[0]
    return row as unknown as
      | Pick<TaskRow, "status" | "attempt" | "failures" | "redeliveries" | "dueAt" | "worker">
      | undefined
  })

const startedAtOf = (instanceId: string) =>
  runInDurableObject(trackerOf(instanceId), (_object: TaskfoldTracker, state) => {
    const row = state.storage.sql.exec<{ row: string }>("SELECT row FROM taskfold_instances").toArray()[0]
    return (JSON.parse(row!.row) as { runs: Array<{ startedAt: number }> }).runs[0]!.startedAt
  })

/** The object of this instance right now (a new one after an eviction). */
const objectOf = (instanceId: string) => runInDurableObject(trackerOf(instanceId), (object: TaskfoldTracker) => object)

afterEach(() => {
  watch.swallowLaneStarts = 0
  watch.cutLaneStarts = []
})

describe("the alarm is the tracker's timer", () => {
  it("R-RETRY-1 a failed task's retry waits out its backoff on the alarm, even in an object evicted meanwhile", async () => {
    const backoff = 1_500
    const instanceId = await submit("flaky", null, {
      ...quiet,
      taskRetries: 1,
      retryBackoff: { kind: "fixed", ms: backoff }
    })
    let row: Awaited<ReturnType<typeof taskOf>>
    await waitUntil(
      async () => (row = await taskOf(instanceId, "0.1"))?.attempt === 1,
      "the first attempt's failure stored"
    )
    expect(row!).toMatchObject({ status: 1, attempt: 1, failures: 1 })
    const dueAt = row!.dueAt!
    // The one alarm is armed for the earliest due time: the retry.
    expect(await alarmOf(instanceId)).toBe(dueAt)

    // An early alarm is harmless: nothing is due yet, and the handler arms the alarm again for the same time.
    expect(await runDurableObjectAlarm(trackerOf(instanceId))).toBe(true)
    await waitUntil(async () => (await alarmOf(instanceId)) === dueAt, "the alarm armed again")
    expect((await taskOf(instanceId, "0.1"))?.status).toBe(1)
    expect(watch.runs.get(`${instanceId} 0.1`)).toEqual([0])

    // Drop the object's memory; from here only the alarm can wake it (nothing else calls it).
    const before = await objectOf(instanceId)
    await sleep(400)
    const retried = nextStart(instanceId, "0.1")
    await evictDurableObject(trackerOf(instanceId))
    const retriedAt = await within(retried, 10_000, "the retry")
    expect(retriedAt).toBeGreaterThanOrEqual(dueAt)
    const outcome = await within(outcomeOf(instanceId), 10_000, "the outcome")
    expect(outcome.ok).toBe(true)
    expect(JSON.parse(outcome.result)).toEqual({ sum: 42, count: 1 })
    expect(watch.runs.get(`${instanceId} 0.1`)).toEqual([0, 1])
    expect(await objectOf(instanceId)).not.toBe(before)
  })

  it("R-DISP-10 a lane invocation that is accepted but never takes its batch fails the send: counted, sent again, run once", async () => {
    watch.swallowLaneStarts = 1
    const swallowedBefore = watch.swallowed
    const instanceId = await submit("counted", { n: 1, ms: 0 }, { ...quiet, ackTimeout: 60_000 })
    await waitUntil(() => watch.swallowed === swallowedBefore + 1, "the first lane start dropped")
    const outcome = await within(outcomeOf(instanceId), 10_000, "the outcome")
    expect(outcome.ok).toBe(true)
    // The dropped attempt 0 never ran; attempt 1, sent after the failed send, did, long before any ack timeout.
    expect(watch.runs.get(`${instanceId} 0.1`)).toEqual([1])
  })

  it("R-DISP-8 after maxRedeliveries unacknowledged sends the task fails as undeliverable", async () => {
    watch.swallowLaneStarts = 2
    const instanceId = await submit("counted", { n: 1, ms: 0 }, { ...quiet, ackTimeout: 500, maxRedeliveries: 1 })
    const outcome = await within(outcomeOf(instanceId), 10_000, "the outcome")
    expect(outcome.ok).toBe(false)
    expect(outcome.result).toMatch(/undeliverable/)
    expect(watch.runs.get(`${instanceId} 0.1`)).toBeUndefined()
  })

  it('R-FIN-5 the instance times out on the alarm: it fails with "timed out" and its running task is stopped', async () => {
    const timeout = 1_500
    const instanceId = freshId("stuck")
    const started = nextStart(instanceId, "0.1")
    await submit("stuck", null, { ...quiet, instanceTimeout: timeout }, instanceId)
    await within(started, 5_000, "the stuck task running")
    const timeoutAt = (await startedAtOf(instanceId)) + timeout
    expect(await alarmOf(instanceId)).toBe(timeoutAt)

    expect(await runDurableObjectAlarm(trackerOf(instanceId))).toBe(true)
    await waitUntil(async () => (await alarmOf(instanceId)) === timeoutAt, "the alarm armed again")
    expect((await status(instanceId)).outcome).toBeNull()

    const stopped = nextStart(instanceId, "0.1 stopped")
    const outcome = await within(outcomeOf(instanceId), 10_000, "the outcome")
    expect(outcome).toMatchObject({ ok: false })
    expect(outcome.result).toMatch(/timed out/)
    expect(outcome.finishedAt).toBeGreaterThanOrEqual(timeoutAt)
    await within(stopped, 5_000, "the stuck task stopped")
    expect((await finished(instanceId)).outcome?.ok).toBe(false)
  })
})

describe("lanes are standing workers", () => {
  it("R-WORK-7 a lane whose answer ends without its closing line is gone at once, not after workerTimeout", async () => {
    const instanceId = freshId("counted")
    const first = nextStart(instanceId, "0.1")
    // The root's sub-task starts the first lane invocation; its answer is cut once it has taken the batch.
    watch.cutLaneStarts = [800]
    await submit("counted", { n: 1, ms: 3_000 }, quiet, instanceId)
    await within(first, 5_000, "the first attempt running")
    const again = await within(nextStart(instanceId, "0.1"), 5_000, "the task sent again")
    expect(watch.runs.get(`${instanceId} 0.1`)).toEqual([0, 1])
    expect(again - (watch.startedAt.get(`${instanceId} 0.1`)?.[0] ?? 0)).toBeLessThan(quiet.workerTimeout)
    const outcome = await within(outcomeOf(instanceId), 10_000, "the outcome")
    expect(outcome.ok).toBe(true)
  })
})
