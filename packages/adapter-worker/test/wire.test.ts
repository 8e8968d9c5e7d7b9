import { MapRequest, TaskBatch, TaskKind } from "@taskfold/core/adapter"
import { decodeMessage, encodeJson, parseJson, type WireError, workerCredential } from "@taskfold/core/wire"
import { SELF } from "cloudflare:test"
import { Effect, Exit, type Schema } from "effect"
import { describe, expect, it } from "vitest"
import { LaneStart } from "../src/index.ts"
import { auth, call, client, finished, freshId, SECRET, status, submit, waitUntil, within } from "./support.ts"
import { nextStart } from "./worker.ts"

const heartbeat = (instanceId: string) => ({
  instanceId,
  workerId: "w",
  slots: 1,
  freeSlots: 1,
  queueLength: 0,
  idle: false
})

const errorOf = async (response: Response) => ((await response.json()) as WireError).error

/** A small seeded generator of request bodies: text, JSON of any shape, and messages with bad fields. */
const randomBodies = (seed: number, instanceId: string) => {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1))
  const pick = <A>(items: ReadonlyArray<A>): A => items[int(0, items.length - 1)] as A
  const text = () =>
    Array.from({ length: int(0, 12) }, () =>
      pick(["a", "0", " ", '"', "\\", "{", "]", "\u0000", "é", "😀", "$bytes"])
    ).join("")
  const json = (depth: number): unknown => {
    const kind = int(0, depth > 3 ? 3 : 6)
    if (kind === 0) return null
    if (kind === 1) return pick([true, false])
    if (kind === 2) return pick([0, -1, 1.5, 2 ** 53, -0, 1e308])
    if (kind === 3) return text()
    if (kind === 4) return Array.from({ length: int(0, 4) }, () => json(depth + 1))
    if (kind === 5) return { $bytes: pick(["!!", "AAEC", "", text()]) }
    return Object.fromEntries(
      Array.from({ length: int(0, 4) }, () => [
        pick(["instanceId", "workerId", "taskId", "reports", "bodies", text()]),
        json(depth + 1)
      ])
    )
  }
  const message = () => ({
    instanceId: pick([instanceId, text()]),
    workerId: text(),
    taskId: pick(["0", "0.1", text()]),
    attempt: pick([0, -1, 0.5, int(-5, 5)]),
    reports: Array.from({ length: int(0, 3) }, () => ({
      taskId: pick(["0.1", text()]),
      attempt: int(-2, 2),
      status: int(-2, 9)
    })),
    bodies: Array.from({ length: int(0, 3) }, () => pick<unknown>([text(), { $bytes: "!!" }, 7]))
  })
  return (): string => {
    const kind = int(0, 3)
    if (kind === 0) return text()
    if (kind === 1) return JSON.stringify(json(0))
    if (kind === 2) return JSON.stringify(message()).slice(0, int(1, 40))
    return JSON.stringify(message())
  }
}

describe("the wire protocol", () => {
  it("R-WIRE-2 a call without the shared secret answers 401 and changes nothing", async () => {
    const none = await SELF.fetch("https://taskfold.test/v1/instances", {
      method: "POST",
      body: JSON.stringify({ job: "sum", params: { n: 1 } })
    })
    expect(none.status).toBe(401)
    const wrong = await SELF.fetch("https://taskfold.test/v1/instances", {
      method: "POST",
      headers: { authorization: "Bearer nope", "content-type": "application/json" },
      body: JSON.stringify({ job: "sum", params: { n: 1 }, instanceId: "never" })
    })
    expect(wrong.status).toBe(401)
    expect((await call("/v1/instances/never")).status).toBe(404)
  })

  it("R-WIRE-2 a body over the limit answers 413", async () => {
    const big = JSON.stringify({ instanceId: "x", workerId: "w", reports: [], pad: "x".repeat(3 * 1024 * 1024) })
    const response = await call("/v1/instances/x/reports", { method: "POST", body: big })
    expect(response.status).toBe(413)
  })

  it("R-WIRE-1 R-WIRE-3 a malformed message answers 400 with the path of the bad field; random bodies never get a 5xx; none reaches the tracker", async () => {
    // A live instance: its one item failed once and waits out a 3 s backoff before its retry.
    const instanceId = freshId("flaky")
    await submit("flaky", null, { taskRetries: 1, retryBackoff: { kind: "fixed", ms: 3_000 } }, instanceId)
    await waitUntil(async () => (await status(instanceId)).progress.byName["item"]?.waiting === 1, "the retry waiting")
    const bad = await call(`/v1/instances/${instanceId}/reports`, {
      method: "POST",
      body: JSON.stringify({ instanceId, workerId: "lane-0", reports: [{ taskId: "0.1", attempt: -1, status: 9 }] })
    })
    expect(bad.status).toBe(400)
    expect(await errorOf(bad)).toMatchObject({
      tag: "DecodeError",
      reason: "bad-field",
      path: '["reports"][0]["attempt"]'
    })
    const notJson = await call(`/v1/instances/${instanceId}/map`, { method: "POST", body: "{not json" })
    expect(notJson.status).toBe(400)

    // Every endpoint of the Worker and of the object, and one of an instance that does not exist.
    const paths = [
      ...["reports", "map", "heartbeat", "pull", "context", "kill", "lanes/lane-0/poll", "lanes/lane-0/heartbeat"].map(
        (call) => `/v1/instances/${instanceId}/${call}`
      ),
      "/v1/instances",
      "/v1/lanes/run",
      "/v1/workers",
      "/v1/instances/nobody/reports"
    ]
    const body = randomBodies(0x7a5f, instanceId)
    for (let i = 0; i < 400; i++) {
      const path = paths[i % paths.length]!
      const text = body()
      const response = await call(path, { method: "POST", body: text })
      await response.body?.cancel()
      expect({ path, text, status: response.status }).toEqual({
        path,
        text,
        status: expect.toBeOneOf([400, 403, 404, 409])
      })
    }

    // Nothing changed: the item still waits for its retry, which then succeeds.
    expect((await status(instanceId)).progress.byName["item"]).toMatchObject({
      total: 1,
      waiting: 1,
      failed: 0,
      succeeded: 0
    })
    const done = await finished(instanceId, 10_000)
    expect(done.outcome).toMatchObject({ ok: true })
    expect(JSON.parse(done.outcome!.result)).toEqual({ sum: 42, count: 1 })
  })

  it("R-FIN-7 a kill through the API stops the running task and fails the instance", async () => {
    const instanceId = freshId("stuck")
    const started = nextStart(instanceId, "0.1")
    await submit("stuck", null, {}, instanceId)
    await within(started, 5_000, "the stuck task running")
    const stopped = nextStart(instanceId, "0.1 stopped")
    const kill = await call(`/v1/instances/${instanceId}/kill`, {
      method: "POST",
      body: JSON.stringify({ taskId: null, reason: "test over" })
    })
    expect(kill.status).toBe(200)
    await within(stopped, 5_000, "the stuck task stopped")
    expect((await finished(instanceId, 10_000)).outcome).toMatchObject({
      ok: false,
      result: expect.stringMatching(/test over/)
    })
  })

  it("R-FIN-7 a kill of one task through core's client stops it in its lane and fails it; reduce sees the failure", async () => {
    const instanceId = freshId("stuck")
    const started = nextStart(instanceId, "0.1")
    await submit("stuck", null, { taskRetries: 0, runReduceIfFail: true }, instanceId)
    await within(started, 5_000, "the stuck task running")
    const stopped = nextStart(instanceId, "0.1 stopped")
    await Effect.runPromise(client.kill(instanceId, "enough", "0.1"))
    await within(stopped, 5_000, "the stuck task stopped")
    const done = await finished(instanceId, 10_000)
    expect(done.outcome).toMatchObject({ ok: false, result: expect.stringMatching(/an item failed/) })
    expect(done.progress.byName["item"]).toMatchObject({ total: 1, failed: 1, succeeded: 0 })
    // Once the outcome is decided a kill is refused (409 while the object lets go, 404 after).
    const late = await Effect.runPromiseExit(client.kill(instanceId, "again"))
    expect(Exit.isFailure(late) && JSON.stringify(late.cause)).toMatch(
      /"reason":"(instance-finished|unknown-instance)"/
    )
  })

  it("R-WIRE-1 R-STATE-4 a message for an unknown instance answers 404", async () => {
    const response = await call("/v1/instances/nobody/heartbeat", {
      method: "POST",
      // As worker w, with its own credential (R-WIRE-4).
      headers: { authorization: `Bearer ${await workerCredential(SECRET, "w")}` },
      body: JSON.stringify(heartbeat("nobody"))
    })
    expect(response.status).toBe(404)
    expect((await errorOf(response)).reason).toBe("unknown-instance")
  })

  it("R-WIRE-1 bodies of bytes travel as base64 and come back as bytes", async () => {
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
    const roundTrip = <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, value: S["Type"]) =>
      Effect.runPromise(decodeMessage(schema, parseJson(encodeJson(value))))
    expect(await roundTrip(TaskBatch, batch)).toEqual(batch)
    const start = {
      instanceId: "i",
      lane: "lane-0",
      generation: "g",
      slots: 2,
      heartbeatInterval: 100,
      items: [{ seq: 0, batch }]
    }
    expect(await roundTrip(LaneStart, start)).toEqual(start)
    const map = {
      instanceId: "i",
      workerId: "w",
      taskId: "0",
      attempt: 0,
      name: "x",
      bodies: [new Uint8Array([7]), "1"]
    }
    expect(await roundTrip(MapRequest, map)).toEqual(map)
    const bad = await Effect.runPromise(
      Effect.flip(decodeMessage(MapRequest, parseJson(JSON.stringify({ ...map, bodies: [{ $bytes: 3 }] }))))
    )
    expect(bad.path).toBe('["bodies"][0]')
  })

  it("a submit naming no deployed job answers 400 at the job field", async () => {
    const response = await SELF.fetch("https://taskfold.test/v1/instances", {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ job: "nope" })
    })
    expect(response.status).toBe(400)
    expect((await errorOf(response)).path).toBe('["job"]')
  })
})
