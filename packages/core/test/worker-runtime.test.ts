import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { defineJob, TaskStatus, TransportError, type ReportBatch, type TrackerLink } from "../src/index.ts"
import { closeScope, outcomeWithin, sleep, startCluster, waitUntil } from "./support.ts"

/** Wraps a link so every report message is recorded as it is sent. */
const recordingReports = (base: TrackerLink, sent: ReportBatch[], before: (batch: ReportBatch, index: number) => Effect.Effect<void, TransportError> = () => Effect.void): TrackerLink => ({
  ...base,
  report: (batch) =>
    Effect.suspend(() => {
      const index = sent.length
      sent.push(batch)
      return before(batch, index).pipe(Effect.andThen(base.report(batch)))
    })
})

const sumOf = (n: number) => (n * (n + 1)) / 2

describe("worker runtime", () => {
  it("Worker runtime: 1,000 fast sub-tasks are reported in far fewer than 1,000 report messages, each task once per message", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const N = 1_000
          const sent: ReportBatch[] = []
          const job = defineJob({
            name: "batched-reports",
            kind: "mapReduce",
            config: { heartbeatInterval: 30, workerTimeout: 300 },
            process: (task, ctx) => {
              if (task.isRoot) return ctx.map(Array.from({ length: N }, (_, i) => i + 1), "n")
              return task.body
            },
            reduce: async (results) => {
              let sum = 0
              for await (const r of results) if (r.name === "n") sum += r.result as number
              return sum
            }
          })
          const cluster = yield* startCluster({ job, workers: 2, slots: 16, link: (_id, base) => recordingReports(base, sent) })
          const outcome = yield* outcomeWithin(cluster.tracker)
          expect(outcome.ok).toBe(true)
          expect(JSON.parse(outcome.result)).toBe(sumOf(N))
          expect(sent.length).toBeLessThan(N / 10)
          for (const batch of sent) {
            const ids = batch.reports.map((report) => report.taskId)
            expect(new Set(ids).size).toBe(ids.length)
          }
          // Every sub-task's success was sent exactly once (none failed, none was repeated).
          const successes = new Map<string, number>()
          for (const batch of sent) {
            for (const report of batch.reports) {
              if (report.status === TaskStatus.Succeeded) successes.set(report.taskId, (successes.get(report.taskId) ?? 0) + 1)
            }
          }
          const subs = [...successes].filter(([id]) => /^0\.\d+$/.test(id))
          expect(subs).toHaveLength(N)
          expect(subs.every(([, count]) => count === 1)).toBe(true)
        })
      )
    ))

  it("Worker runtime: statuses that pile up while a report is under way are sent as the newest one per task", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const N = 10
          const sent: ReportBatch[] = []
          let finished = 0
          let open: () => void = () => {}
          const gate = new Promise<void>((resolve) => {
            open = resolve
          })
          const job = defineJob({
            name: "newest-only",
            kind: "mapReduce",
            // Sub-tasks on worker-1 only; ack timeout far away, so nothing is redelivered while the report waits.
            config: { heartbeatInterval: 30, workerTimeout: 2_000, ackTimeout: 5_000, localWorker: "exclude" },
            process: async (task, ctx) => {
              if (task.isRoot) return ctx.map(Array.from({ length: N }, (_, i) => i + 1), "n")
              await sleep(1)
              finished++
              return task.body
            },
            reduce: async (results) => {
              let sum = 0
              for await (const r of results) if (r.name === "n") sum += r.result as number
              return sum
            }
          })
          const cluster = yield* startCluster({
            job,
            workers: 2,
            slots: 2,
            // worker-1's first report message is held until every sub-task has finished.
            link: (id, base) =>
              id === "worker-1" ? recordingReports(base, sent, (_batch, index) => (index === 0 ? Effect.promise(() => gate) : Effect.void)) : base
          })
          yield* waitUntil(() => finished === N, "all sub-tasks finished on worker-1")
          // Receipt is the batch's send (R-DISP-10): the first message carries the first results only.
          expect(sent).toHaveLength(1)
          const first = sent[0]!
          expect(first.reports.length).toBeLessThan(N)
          expect(first.reports.every((report) => report.status === TaskStatus.Succeeded)).toBe(true)
          open()
          const outcome = yield* outcomeWithin(cluster.tracker)
          expect(outcome.ok).toBe(true)
          expect(JSON.parse(outcome.result)).toBe(sumOf(N))
          // Everything that finished meanwhile went in one message: one report per task, none twice.
          expect(sent.length).toBeGreaterThanOrEqual(2)
          const second = sent[1]!
          expect(second.reports).toHaveLength(N - first.reports.length)
          const ids = [...first.reports, ...second.reports].map((report) => report.taskId)
          expect(new Set(ids).size).toBe(N)
          expect(second.reports.every((report) => report.status === TaskStatus.Succeeded)).toBe(true)
        })
      )
    ))

  it("R-RETRY-4 worker runtime: a report message that fails is kept and sent again (never dropped silently); the instance completes", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const sent: ReportBatch[] = []
          const job = defineJob({
            name: "report-retry",
            kind: "mapReduce",
            config: { heartbeatInterval: 30, workerTimeout: 2_000, localWorker: "exclude" },
            process: (task, ctx) => (task.isRoot ? ctx.map([1, 2, 3, 4], "n") : task.body),
            reduce: async (results) => {
              let sum = 0
              for await (const r of results) if (r.name === "n") sum += r.result as number
              return sum
            }
          })
          const cluster = yield* startCluster({
            job,
            workers: 2,
            // worker-1's first two report messages are lost on the way.
            link: (id, base) =>
              id === "worker-1"
                ? recordingReports(base, sent, (_batch, index) =>
                    index < 2 ? Effect.fail(new TransportError({ reason: "timeout", message: "lost" })) : Effect.void
                  )
                : base
          })
          const outcome = yield* outcomeWithin(cluster.tracker)
          expect(outcome.ok).toBe(true)
          expect(JSON.parse(outcome.result)).toBe(10)
          expect(sent.length).toBeGreaterThanOrEqual(3)
          // What the lost messages carried was sent again.
          const lostIds = new Set(sent.slice(0, 2).flatMap((batch) => batch.reports.map((report) => report.taskId)))
          const laterIds = new Set(sent.slice(2).flatMap((batch) => batch.reports.map((report) => report.taskId)))
          for (const id of lostIds) expect(laterIds.has(id)).toBe(true)
          expect([...lostIds].sort()).toEqual(["0.1", "0.2", "0.3", "0.4"])
        })
      )
    ))

  it("R-WORK-2 worker runtime: closing a worker's scope stops it: running tasks are aborted, queued ones never start, nothing more is reported", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const started: string[] = []
          const aborted: string[] = []
          let reportsAfterClose = 0
          let closedAt: number | null = null
          const jobOn = (workerId: string) => defineJob({
            name: "closing",
            kind: "mapReduce",
            config: { heartbeatInterval: 30, workerTimeout: 150, localWorker: "exclude" },
            process: async (task, ctx) => {
              if (task.isRoot) return ctx.map(Array.from({ length: 40 }, (_, i) => i), "slow")
              started.push(`${workerId}:${task.id}`)
              await new Promise<void>((resolve) => {
                const timer = setTimeout(resolve, 150)
                ctx.signal.addEventListener("abort", () => {
                  clearTimeout(timer)
                  aborted.push(task.id)
                  resolve()
                })
              })
              return task.body
            },
            reduce: async (results) => {
              let count = 0
              for await (const r of results) if (r.name === "slow") count++
              return count
            }
          })
          const cluster = yield* startCluster({
            job: jobOn,
            workers: 3,
            slots: 2,
            link: (workerId, base) => ({
              ...base,
              report: (batch) =>
                Effect.suspend(() => {
                  if (workerId === "worker-1" && closedAt !== null) reportsAfterClose++
                  return base.report(batch)
                })
            })
          })
          yield* waitUntil(() => started.length >= 2, "sub-tasks running")
          const victim = cluster.workers.get("worker-1")
          if (victim === undefined) throw new Error("no worker-1")
          yield* waitUntil(() => victim.handle.stats().running > 0, "worker-1 busy")
          expect(victim.handle.stats().queued).toBeGreaterThan(0)
          cluster.network.removeWorker("worker-1")
          closedAt = Date.now()
          yield* closeScope(victim.scope)
          expect(aborted.length).toBeGreaterThan(0)
          const onVictim = () => started.filter((entry) => entry.startsWith("worker-1:")).length
          const startedThereAtClose = onVictim()
          yield* Effect.promise(() => sleep(400))
          expect(onVictim()).toBe(startedThereAtClose)
          expect(victim.handle.stats().running).toBe(0)
          expect(reportsAfterClose).toBe(0)
          const outcome = yield* outcomeWithin(cluster.tracker, 10_000)
          expect(outcome).toMatchObject({ ok: true, result: "40" })
        })
      )
    ))
})
