import { TaskKind, type TaskBatch } from "@taskfold/core"
import { SELF } from "cloudflare:test"
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import { decodeMapRequest, decodeTaskBatch, encodeMapRequest, encodeTaskBatch } from "../src/http.ts"
import { auth, call, finished, freshId, status, submit, waitUntil, within } from "./support.ts"
import { nextStart } from "./worker.ts"

const heartbeat = (instanceId: string) => ({ instanceId, workerId: "w", slots: 1, freeSlots: 1, queueLength: 0, idle: false })

describe("the wire protocol", () => {
  it("R-WIRE-2 a call without the shared secret answers 401 and changes nothing", async () => {
    const none = await SELF.fetch("https://taskfold.test/instances", { method: "POST", body: JSON.stringify({ job: "sum", params: { n: 1 } }) })
    expect(none.status).toBe(401)
    const wrong = await SELF.fetch("https://taskfold.test/instances", {
      method: "POST",
      headers: { authorization: "Bearer nope", "content-type": "application/json" },
      body: JSON.stringify({ job: "sum", params: { n: 1 }, instanceId: "never" })
    })
    expect(wrong.status).toBe(401)
    expect((await call("/instances/never")).status).toBe(404)
  })

  it("R-WIRE-2 a body over the limit answers 413", async () => {
    const big = JSON.stringify({ instanceId: "x", workerId: "w", reports: [], pad: "x".repeat(3 * 1024 * 1024) })
    const response = await call("/instances/x/reports", { method: "POST", body: big })
    expect(response.status).toBe(413)
  })

  it("R-WIRE-1 R-WIRE-3 a malformed message answers 400 with the path of every bad field and reaches no tracker", async () => {
    // A live instance: its one item failed once and waits out a 3 s backoff before its retry.
    const instanceId = freshId("flaky")
    await submit("flaky", null, { taskRetries: 1, retryBackoff: { kind: "fixed", ms: 3_000 } }, instanceId)
    await waitUntil(async () => (await status(instanceId)).progress?.byName["item"]?.waiting === 1, "the retry waiting")
    const bad = await call(`/instances/${instanceId}/reports`, {
      method: "POST",
      body: JSON.stringify({ instanceId, workerId: "lane-0", reports: [{ taskId: "0.1", attempt: -1, status: 9 }] })
    })
    expect(bad.status).toBe(400)
    const body = (await bad.json()) as { error: { _tag: string; issues: Array<{ path: unknown[] }> } }
    expect(body.error._tag).toBe("DecodeError")
    expect(body.error.issues.map((issue) => issue.path)).toEqual(
      expect.arrayContaining([
        ["reports", 0, "attempt"],
        ["reports", 0, "status"]
      ])
    )
    const notJson = await call(`/instances/${instanceId}/map`, { method: "POST", body: "{not json" })
    expect(notJson.status).toBe(400)
    // Nothing changed: the item still waits for its retry, which then succeeds.
    expect((await status(instanceId)).progress?.byName["item"]).toMatchObject({ total: 1, waiting: 1, failed: 0, succeeded: 0 })
    const done = await finished(instanceId, 10_000)
    expect(done.outcome).toMatchObject({ ok: true })
    expect(JSON.parse(done.outcome!.result)).toEqual({ sum: 42, count: 1 })
  })

  // A kill (of the instance or of one task) while the task runs in a lane answers 200 and decides the
  // outcome, but afterwards nothing in the test isolate makes progress (timers and new requests stall) under
  // @cloudflare/vitest-plugin 1.5.0; the same sequence in Node (core tracker, runtime and runLane) is fine.
  it.skip("R-FIN-7 a kill through the API stops the running task and fails the instance", async () => {
    const instanceId = freshId("stuck")
    const started = nextStart(instanceId, "0.1")
    await submit("stuck", null, {}, instanceId)
    await within(started, 5_000, "the stuck task running")
    const kill = await call(`/instances/${instanceId}/kill`, { method: "POST", body: JSON.stringify({ instanceId, taskId: null, reason: "test over" }) })
    expect(kill.status).toBe(200)
    expect((await finished(instanceId, 10_000)).outcome).toMatchObject({ ok: false, result: expect.stringMatching(/test over/) })
  })

  it("R-WIRE-1 R-STATE-4 a message for an unknown instance answers 404", async () => {
    const response = await call("/instances/nobody/heartbeat", { method: "POST", body: JSON.stringify(heartbeat("nobody")) })
    expect(response.status).toBe(404)
    expect(((await response.json()) as { error: { reason: string } }).error.reason).toBe("unknown-instance")
  })

  it("R-WIRE-1 bodies of bytes travel as base64 and come back as bytes", () => {
    const batch: TaskBatch = {
      instanceId: "i",
      job: "j",
      params: "null",
      seq: 0,
      context: {},
      tasks: [
        { id: "0.1", name: "a", kind: TaskKind.Sub, body: new Uint8Array([0, 1, 2, 255]), attempt: 0 },
        { id: "0.2", name: "a", kind: TaskKind.Sub, body: '{"n":1}', attempt: 0 }
      ]
    }
    const decoded = decodeTaskBatch(JSON.parse(JSON.stringify(encodeTaskBatch(batch))))
    expect(Result.isSuccess(decoded) && decoded.success).toEqual(batch)
    const map = { instanceId: "i", workerId: "w", taskId: "0", attempt: 0, name: "x", bodies: [new Uint8Array([7]), "1"] }
    const back = decodeMapRequest(JSON.parse(JSON.stringify(encodeMapRequest(map))))
    expect(Result.isSuccess(back) && back.success).toEqual(map)
    expect(Result.isFailure(decodeMapRequest({ ...map, bodies: [{ $bytes: 3 }] }))).toBe(true)
  })

  it("a submit naming no deployed job answers 400 at the job field", async () => {
    const response = await SELF.fetch("https://taskfold.test/instances", { method: "POST", headers: auth, body: JSON.stringify({ job: "nope" }) })
    expect(response.status).toBe(400)
    expect(((await response.json()) as { error: { issues: Array<{ path: unknown[] }> } }).error.issues[0]?.path).toEqual(["job"])
  })
})
