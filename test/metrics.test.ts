import { defineJob, type Job } from "@taskfold/core"
import { makeMemoryStore } from "@taskfold/core/adapter"
import { makeTrackerApp, makeTrackerServer, workerCredential } from "@taskfold/core/wire"
import { Effect, Exit, Scope } from "effect"
import type { Hono } from "hono"
import { afterEach, describe, expect, it } from "vitest"

const SECRET = "metrics-test-secret-0123456789"
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

let open = () => {}
const summed = defineJob({
  name: "metered",
  kind: "mapReduce",
  process: async (task, ctx) => {
    if (!task.isRoot) return task.body
    if (ctx.params === "hold") await new Promise<void>((resolve) => (open = resolve))
    return ctx.map(
      Array.from({ length: 300 }, (_, i) => i),
      "part"
    )
  },
  reduce: async () => "done"
})

const start = async (job: Job): Promise<Hono> => {
  const scope = Effect.runSync(Scope.make())
  cleanups.push(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  const server = await Effect.runPromise(
    makeTrackerServer({ token: SECRET, jobs: new Map([[job.name, job]]), store: makeMemoryStore() }).pipe(
      Scope.provide(scope)
    )
  )
  return makeTrackerApp(server.host, { token: SECRET })
}

const get = (app: Hono, path: string, bearer = SECRET) =>
  Promise.resolve(app.request(`http://tracker${path}`, { headers: { authorization: `Bearer ${bearer}` } }))
const post = (app: Hono, path: string, body: unknown, bearer = SECRET) =>
  Promise.resolve(
    app.request(`http://tracker${path}`, {
      method: "POST",
      body: JSON.stringify(body),
      headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" }
    })
  )

/** Samples by metric name and labels: `name{labels}` → value. */
const samples = (text: string): Map<string, number> => {
  const found = new Map<string, number>()
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue
    const match = /^([a-z_]+(?:\{[^}]*\})?) (-?[0-9.e+]+)$/.exec(line)
    expect(match, `a sample line in the Prometheus text format: ${line}`).not.toBeNull()
    found.set(match![1]!, Number(match![2]))
  }
  return found
}

describe("metrics", () => {
  it("GET /metrics gives the operator Prometheus text: batch sizes, store writes, tasks by state and job, workers, registrations", async () => {
    const app = await start(summed)
    const credential = await workerCredential(SECRET, "w1")
    const registration = { workerId: "w1", url: "http://w1", key: "k".repeat(32), slots: 1, jobs: [] }
    expect((await post(app, "/v1/workers", registration, credential)).status).toBe(200)
    expect((await post(app, "/v1/instances", { job: "metered", instanceId: "done" })).status).toBe(200)
    for (let i = 0; i < 200; i++) {
      const status = (await (await get(app, "/v1/instances/done")).json()) as { outcome: unknown }
      if (status.outcome !== null) break
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    expect((await post(app, "/v1/instances", { job: "metered", instanceId: "held", params: "hold" })).status).toBe(200)
    await new Promise((resolve) => setTimeout(resolve, 100))

    const response = await get(app, "/metrics")
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = await response.text()
    const found = samples(text)
    expect(found.get('taskfold_dispatch_batch_tasks_sum{job="metered"}')).toBeGreaterThanOrEqual(302)
    expect(found.get('taskfold_report_batch_reports_sum{job="metered"}')).toBeGreaterThanOrEqual(302)
    expect(found.get('taskfold_store_write_seconds_count{job="metered"}')).toBeGreaterThan(0)
    expect(found.get('taskfold_dispatch_batch_tasks_bucket{job="metered",le="+Inf"}')).toBe(
      found.get('taskfold_dispatch_batch_tasks_count{job="metered"}')
    )
    expect(found.get('taskfold_instances_running{job="metered"}')).toBe(1)
    expect(found.get('taskfold_tasks{job="metered",name="ROOT",state="running"}')).toBe(1)
    expect(found.get('taskfold_workers{job="metered"}')).toBe(1)
    expect(found.get("taskfold_registrations")).toBe(1)
    expect(text).toMatch(/# TYPE taskfold_store_write_seconds histogram/)
    // A worker's credential reads no metrics.
    expect((await get(app, "/metrics", credential)).status).toBe(403)
    open()
  })
})
