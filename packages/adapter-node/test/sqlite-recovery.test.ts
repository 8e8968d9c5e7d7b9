import { defineJob, type Job, type TaskResult } from "@taskfold/core"
import { resumeTracker, TaskStatus, TaskStore, Transport } from "@taskfold/core/adapter"
import { Effect } from "effect"
import { DatabaseSync } from "node:sqlite"
import { describe, expect, it } from "vitest"
import {
  closeScope,
  counter,
  crashableLinks,
  LOCAL,
  outcomeWithin,
  sleep,
  startCluster,
  waitUntil,
  type Cluster
} from "../../core/test/support.ts"
import type { SqliteStore } from "../src/index.ts"
import { tempDatabases } from "./temp-db.ts"

const databases = tempDatabases()

/** A read-only second connection, closed with the test's scope: what is on disk, not what the store says. */
const reader = (file: string) =>
  Effect.acquireRelease(
    Effect.sync(() => new DatabaseSync(file, { readOnly: true })),
    (db) => Effect.sync(() => db.close())
  )

const terminalCount = (db: DatabaseSync): number =>
  (db.prepare("SELECT count(*) AS n FROM taskfold_tasks WHERE status >= 5").get() as { n: number }).n

const terminalIds = (db: DatabaseSync): string[] =>
  db
    .prepare("SELECT id FROM taskfold_tasks WHERE status >= 5")
    .all()
    .map((row) => (row as { id: string }).id)

/**
 * A mapReduce job over `n` items: item i gives 2i, items that are multiples of `failEvery` fail (0: none).
 * `invocations` counts runs per task id; `reduced` collects what reduce saw. `job` gives each worker its
 * own copy, so `kill(workerId)` can make a worker's processors hang, as in a dead process: a worker whose
 * scope is closed still starts the tasks queued on it (core's startWorker adds no finalizer).
 */
const doublingJob = (name: string, n: number, failEvery: number) => {
  const invocations = counter()
  const reduced: TaskResult[] = []
  const dead = new Set<string>()
  const forWorker = (workerId: string): Job =>
    defineJob({
      name,
      kind: "mapReduce",
      config: { taskRetries: 0, heartbeatInterval: 20, workerTimeout: 150, ackTimeout: 300 },
      process: async (task, ctx) => {
        if (dead.has(workerId)) return new Promise<never>(() => {})
        invocations.add(task.id)
        if (task.isRoot) {
          await ctx.map(
            Array.from({ length: n }, (_, i) => i + 1),
            "item"
          )
          return "mapped"
        }
        await sleep(4)
        const item = task.body as number
        if (failEvery > 0 && item % failEvery === 0) throw new Error(`item ${item} fails`)
        return item * 2
      },
      reduce: async (results) => {
        let sum = 0
        for await (const result of results) {
          reduced.push(result)
          if (result.name === "item" && result.ok) sum += result.result as number
        }
        return sum
      }
    })
  const jobs = new Map<string, Job>()
  const job = (workerId: string): Job => {
    let found = jobs.get(workerId)
    if (found === undefined) jobs.set(workerId, (found = forWorker(workerId)))
    return found
  }
  return { job, invocations, reduced, kill: (workerId: string) => void dead.add(workerId) }
}

/**
 * The tracker's process dies: the tracker and its local worker stop, calls in flight fail as dropped
 * connections, and the database is closed under them. Remote workers keep running.
 */
const crashTrackerProcess = (
  cluster: Cluster,
  links: ReturnType<typeof crashableLinks>,
  store: SqliteStore,
  kill: (workerId: string) => void
) =>
  Effect.gen(function* () {
    kill(LOCAL)
    cluster.network.removeTracker(cluster.instanceId)
    cluster.network.removeWorker(LOCAL)
    yield* closeScope(cluster.trackerScope)
    yield* closeScope(cluster.workers.get(LOCAL)!.scope)
    links.crash()
    store.close()
  })

describe("sqlite store: a tracker restarted on the same database file", () => {
  it("R-REC-1 R-REC-2 the tracker and its database closed mid-run resume from the reopened file: the instance succeeds, no terminal task runs again, reduce sees every task once", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const N = 400
          const file = databases.path()
          const store = databases.open(file)
          const { job, invocations, reduced, kill } = doublingJob("recover-sqlite", N, 0)
          const links = crashableLinks()
          const cluster = yield* startCluster({
            job,
            store,
            workers: 3,
            slots: 4,
            link: (_id, base) => links.wrap(base)
          })
          const { instanceId, network } = cluster
          const disk = yield* reader(file)

          yield* waitUntil(() => terminalCount(disk) >= 100, "100 terminal tasks on disk before the crash")
          yield* crashTrackerProcess(cluster, links, store, kill)
          const terminalBefore = terminalIds(disk)
          const runsBefore = new Map(terminalBefore.map((id) => [id, invocations.get(id)]))
          expect(terminalBefore.length).toBeGreaterThanOrEqual(100)
          expect(terminalBefore.length).toBeLessThan(N + 1)
          yield* Effect.promise(() => sleep(40))

          // A new process: a new store object on the same file, a resumed tracker, a new local worker.
          const reopened = databases.open(file)
          expect(yield* reopened.listInstances()).toEqual([instanceId])
          const resumed = yield* resumeTracker(instanceId, "local-2").pipe(
            Effect.provideService(TaskStore, reopened),
            Effect.provideService(Transport, network.transport)
          )
          network.addTracker(resumed)
          yield* cluster.addWorker("local-2")
          for (const [id, worker] of cluster.workers)
            if (id !== LOCAL) yield* Effect.ignore(worker.handle.join(instanceId))

          const outcome = yield* outcomeWithin(resumed, 15_000)
          expect(outcome.ok).toBe(true)
          expect(JSON.parse(outcome.result)).toBe(N * (N + 1))
          // Exactly-once accounting: reduce saw the root and every item once.
          expect(reduced).toHaveLength(N + 1)
          expect(new Set(reduced.map((result) => result.taskId)).size).toBe(N + 1)
          expect(reduced.every((result) => result.ok)).toBe(true)
          // No task that was terminal on disk at the crash ran again.
          for (const [id, runs] of runsBefore) expect({ id, runs: invocations.get(id) }).toEqual({ id, runs })
          const progress = yield* resumed.progress
          expect(progress.byName["item"]).toMatchObject({ total: N, succeeded: N, failed: 0, waiting: 0 })
          // Once the owner has the outcome the instance is released and deleted from the file.
          yield* resumed.released.pipe(Effect.timeout(5_000))
          expect(yield* reopened.listInstances()).toEqual([])
        })
      )
    ))

  it("R-REC-1 reopening a database lists its live instances, and load gives counters that match the rows", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const file = databases.path()
          const store = databases.open(file)
          const disk = yield* reader(file)

          // One instance runs to the end (released, so deleted); two are cut off mid-run.
          const done = doublingJob("finished", 20, 0)
          const finished = yield* startCluster({ job: done.job, store, workers: 2, slots: 4 })
          yield* outcomeWithin(finished.tracker)
          yield* finished.tracker.released.pipe(Effect.timeout(5_000))

          const live: string[] = []
          const crashes: Array<Effect.Effect<void>> = []
          for (const name of ["cut-a", "cut-b"]) {
            const { job, kill } = doublingJob(name, 300, 7)
            const links = crashableLinks()
            const cluster = yield* startCluster({
              job,
              store,
              workers: 3,
              slots: 4,
              link: (_id, base) => links.wrap(base)
            })
            live.push(cluster.instanceId)
            crashes.push(
              Effect.gen(function* () {
                cluster.network.removeTracker(cluster.instanceId)
                yield* closeScope(cluster.trackerScope)
                for (const [id, worker] of cluster.workers) {
                  kill(id)
                  yield* closeScope(worker.scope)
                }
                links.crash()
              })
            )
          }
          yield* waitUntil(() => terminalCount(disk) >= 150, "150 terminal tasks on disk")
          for (const crash of crashes) yield* crash
          store.close()

          const reopened = databases.open(file)
          expect([...(yield* reopened.listInstances())].sort()).toEqual([...live].sort())
          for (const instanceId of live) {
            const stored = yield* reopened.load(instanceId)
            if (stored === undefined) return yield* Effect.die(new Error(`${instanceId} was not loaded`))
            const [counters] = stored.instance.runs
            if (counters === undefined) return yield* Effect.die(new Error(`${instanceId} has no run counters`))
            const sum = (status: number) =>
              stored.terminal
                .filter((count) => status === 0 || count.status === status)
                .reduce((total, count) => total + count.count, 0)
            // The counters in the instance row were written in the same transactions as the rows they count.
            expect(counters.succeeded).toBe(sum(TaskStatus.Succeeded))
            expect(counters.failed).toBe(sum(TaskStatus.Failed))
            expect(counters.created).toBe(stored.live.length + sum(0))
            expect(stored.instance.nextSeq).toBe(counters.created)
            // Live tasks are the non-terminal ones, in seq order; the grouped counts are those of the rows on disk.
            const seqs = stored.live.map((row) => row.seq)
            expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
            expect(stored.live.every((row) => row.status < TaskStatus.Failed)).toBe(true)
            const onDisk = disk
              .prepare(
                `SELECT t.status AS status, count(*) AS n
                 FROM taskfold_tasks t JOIN taskfold_instances i ON t.instance = i.key
                 WHERE i.id = ? GROUP BY t.status ORDER BY t.status`
              )
              .all(instanceId)
              .map((row) => ({ ...(row as { status: number; n: number }) }))
            const fromLoad = new Map<number, number>()
            for (const row of stored.live) fromLoad.set(row.status, (fromLoad.get(row.status) ?? 0) + 1)
            for (const count of stored.terminal)
              fromLoad.set(count.status, (fromLoad.get(count.status) ?? 0) + count.count)
            expect(onDisk).toEqual([...fromLoad].sort(([a], [b]) => a - b).map(([status, n]) => ({ status, n })))
            expect(counters.failed).toBeGreaterThan(0)
            expect(counters.succeeded).toBeGreaterThan(0)
          }
        })
      )
    ))
})
