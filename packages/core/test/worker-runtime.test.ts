import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { ConfigError, defineJob, RejectedError, TransportError, type Job } from "../src/index.ts"
import {
  startWorker,
  TaskKind,
  TaskStatus,
  type Heartbeat,
  type MapRequest,
  type ReportBatch,
  type TaskBatch,
  type TrackerLink
} from "../src/adapter.ts"
import { closeScope, outcomeWithin, sleep, startCluster, waitUntil } from "./support.ts"

/** A tracker link that records what a worker sends and answers as a tracker would; `map` may be overridden. */
const fakeLink = (
  map: (request: MapRequest, index: number) => Effect.Effect<number, TransportError | RejectedError> = (request) =>
    Effect.succeed(request.bodies.length)
) => {
  const heartbeats: Heartbeat[] = []
  const reports: ReportBatch[] = []
  const maps: MapRequest[] = []
  /** Message numbers in the order the messages were sent, heartbeats and reports alike. */
  const numbers: number[] = []
  const link: TrackerLink = {
    heartbeat: (heartbeat) =>
      Effect.sync(() => {
        heartbeats.push(heartbeat)
        if (heartbeat.n !== undefined) numbers.push(heartbeat.n)
        return { dispatchMode: "push" as const }
      }),
    report: (batch) =>
      Effect.sync(() => {
        reports.push(batch)
        if (batch.n !== undefined) numbers.push(batch.n)
        return { applied: batch.reports.length, dropped: 0, unknown: [], rejected: [] }
      }),
    map: (request) => Effect.suspend(() => map(request, maps.push(request) - 1)),
    appendContext: () => Effect.succeed(true),
    readResults: () => Effect.succeed([])
  }
  return { link, heartbeats, reports, maps, numbers }
}

const batchOf = (seq: number, tasks: TaskBatch["tasks"], params?: string): TaskBatch => ({
  instanceId: "inst",
  job: "fake",
  ...(params === undefined ? {} : { params }),
  maxResultBytes: 1024,
  seq,
  context: {},
  tasks
})

const sub = (id: string, body: string) => ({ id, name: "step", kind: TaskKind.Sub, attempt: 0, body })

/** Wraps a link so every report message is recorded as it is sent. */
const recordingReports = (
  base: TrackerLink,
  sent: ReportBatch[],
  before: (batch: ReportBatch, index: number) => Effect.Effect<void, TransportError> = () => Effect.void
): TrackerLink => ({
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
              if (task.isRoot)
                return ctx.map(
                  Array.from({ length: N }, (_, i) => i + 1),
                  "n"
                )
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
            slots: 16,
            link: (_id, base) => recordingReports(base, sent)
          })
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
              if (report.status === TaskStatus.Succeeded)
                successes.set(report.taskId, (successes.get(report.taskId) ?? 0) + 1)
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
              if (task.isRoot)
                return ctx.map(
                  Array.from({ length: N }, (_, i) => i + 1),
                  "n"
                )
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
              id === "worker-1"
                ? recordingReports(base, sent, (_batch, index) =>
                    index === 0 ? Effect.promise(() => gate) : Effect.void
                  )
                : base
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
          const jobOn = (workerId: string) =>
            defineJob({
              name: "closing",
              kind: "mapReduce",
              config: { heartbeatInterval: 30, workerTimeout: 150, localWorker: "exclude" },
              process: async (task, ctx) => {
                if (task.isRoot)
                  return ctx.map(
                    Array.from({ length: 40 }, (_, i) => i),
                    "slow"
                  )
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

  it("R-DISP-10 worker runtime: deliver takes a batch and answers at once, before any processor runs; a pushed batch gets no Received or Running report", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const started: string[] = []
          const job: Job = defineJob({
            name: "fake",
            kind: "map",
            process: (task) => {
              started.push(task.id)
              return task.body
            }
          })
          const fake = fakeLink()
          const worker = yield* startWorker({
            id: "w",
            slots: 4,
            jobs: (name) => (name === "fake" ? job : undefined),
            connect: () => fake.link,
            heartbeatInterval: 20
          })
          yield* worker.join("inst")
          // a worker that has no params of the instance refuses a batch without them, and takes nothing
          const refused = worker.deliver(batchOf(0, [sub("0.9", "9")]))
          expect(refused).toBeInstanceOf(RejectedError)
          expect(refused!.reason).toBe("bad-input")
          expect(worker.stats()).toMatchObject({ running: 0, queued: 0 })
          expect(worker.deliver(batchOf(3, [sub("0.1", "1"), sub("0.2", "2")], "null"))).toBeUndefined()
          // taken, not started: the answer to the send is the receipt
          expect(started).toEqual([])
          expect(worker.stats().queued + worker.stats().running).toBe(2)
          // later batches may leave the params out
          expect(worker.deliver(batchOf(5, [sub("0.3", "3")]))).toBeUndefined()
          yield* waitUntil(
            () => fake.reports.flatMap((b) => b.reports).filter((r) => r.status === TaskStatus.Succeeded).length === 3,
            "three results"
          )
          expect(started.sort()).toEqual(["0.1", "0.2", "0.3"])
          const statuses = fake.reports.flatMap((batch) => batch.reports.map((report) => report.status))
          expect(statuses.every((status) => status === TaskStatus.Succeeded)).toBe(true)
          // heartbeats name the incarnation, the lowest and highest batch seq taken, and number the messages
          yield* waitUntil(() => fake.heartbeats.some((beat) => beat.seen === 5), "a heartbeat after the batches")
          const last = fake.heartbeats[fake.heartbeats.length - 1]!
          expect(last).toMatchObject({ instanceId: "inst", workerId: "w", slots: 4, seen: 5, firstSeen: 3 })
          expect(typeof last.incarnation).toBe("string")
          expect(new Set(fake.heartbeats.map((beat) => beat.incarnation)).size).toBe(1)
          expect(fake.heartbeats[0]).toMatchObject({ seen: -1, firstSeen: -1, idle: true })
          // one numbering for heartbeats and reports, rising in the order they were sent
          expect(fake.numbers.length).toBe(fake.heartbeats.length + fake.reports.length)
          for (let i = 1; i < fake.numbers.length; i++) expect(fake.numbers[i]!).toBeGreaterThan(fake.numbers[i - 1]!)
        })
      )
    ))

  it("R-MAP-6 worker runtime: a map call whose answer was lost is sent again as it was; the next call starts after it", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const answers: unknown[] = []
          const job: Job = defineJob({
            name: "fake",
            kind: "map",
            process: async (_task, ctx) => {
              answers.push(await ctx.map(["a", "b"], "first"))
              answers.push(await ctx.map(["c"], "second"))
              return "mapped"
            }
          })
          // the first call gets through but its answer is lost; every other call is answered
          const fake = fakeLink((request, index) =>
            index === 0
              ? Effect.fail(new TransportError({ reason: "timeout", message: "answer lost" }))
              : Effect.succeed(index === 1 ? 0 : request.bodies.length)
          )
          const worker = yield* startWorker({
            id: "w",
            slots: 1,
            jobs: () => job,
            connect: () => fake.link,
            heartbeatInterval: 50
          })
          yield* worker.join("inst")
          worker.deliver(batchOf(0, [sub("0.1", "1")], "null"))
          yield* waitUntil(() => answers.length === 2, "both map calls answered")
          expect(
            fake.maps.map((request) => [request.taskId, request.attempt, request.name, request.from, request.bodies])
          ).toEqual([
            ["0.1", 0, "first", 0, ['"a"', '"b"']],
            ["0.1", 0, "first", 0, ['"a"', '"b"']],
            ["0.1", 0, "second", 2, ['"c"']]
          ])
          expect(answers).toEqual([0, 1])
        })
      )
    ))

  it("R-MAP-6 worker runtime: a refused map call uses up no position; the next call of the attempt starts where the refused one did", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          let refusal: unknown
          let mappedAfter: unknown
          const job: Job = defineJob({
            name: "fake",
            kind: "map",
            process: async (_task, ctx) => {
              try {
                await ctx.map(["x", "y"], "refused")
              } catch (error) {
                refusal = error
              }
              mappedAfter = await ctx.map(["z"], "next")
              return "done"
            }
          })
          const fake = fakeLink((request, index) =>
            index === 0
              ? Effect.fail(new RejectedError({ reason: "body-too-large", message: "too big" }))
              : Effect.succeed(request.bodies.length)
          )
          const worker = yield* startWorker({
            id: "w",
            slots: 1,
            jobs: () => job,
            connect: () => fake.link,
            heartbeatInterval: 50
          })
          yield* worker.join("inst")
          worker.deliver(batchOf(0, [sub("0.1", "1")], "null"))
          yield* waitUntil(() => mappedAfter !== undefined, "the second map call answered")
          expect(refusal).toMatchObject({ name: "RejectedError", reason: "body-too-large" })
          expect(fake.maps.map((request) => [request.name, request.from])).toEqual([
            ["refused", 0],
            ["next", 0]
          ])
        })
      )
    ))

  it("config: startWorker fails with ConfigError for slots 0 or 1.5 and for a heartbeatInterval that is not positive", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const fake = fakeLink()
          const options = { id: "w", slots: 2, jobs: () => undefined, connect: () => fake.link, heartbeatInterval: 50 }
          for (const bad of [
            { slots: 0 },
            { slots: 1.5 },
            { slots: -3 },
            { heartbeatInterval: 0 },
            { heartbeatInterval: Number.NaN }
          ]) {
            const error = yield* Effect.flip(startWorker({ ...options, ...bad }))
            expect(error).toBeInstanceOf(ConfigError)
            expect(error.reason).toBe("invalid-config")
          }
          const ok = yield* startWorker(options)
          expect(ok.id).toBe("w")
        })
      )
    ))

  it("R-DISP-9 the tracker's answer to a heartbeat tells the worker how the instance hands out sub-tasks", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          for (const dispatchMode of ["push", "pull"] as const) {
            const job = defineJob({
              name: `mode-${dispatchMode}`,
              kind: "standalone",
              config: { heartbeatInterval: 30, workerTimeout: 300, dispatchMode },
              process: () => 1
            })
            const cluster = yield* startCluster({ job, workers: 1, owner: () => {} })
            const reply = yield* cluster.tracker.heartbeat({
              instanceId: cluster.instanceId,
              workerId: "extra",
              slots: 1,
              freeSlots: 1,
              queueLength: 0,
              idle: true
            })
            expect(reply).toEqual({ dispatchMode })
          }
        })
      )
    ))
})
