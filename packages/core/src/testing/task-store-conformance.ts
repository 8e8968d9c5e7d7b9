import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import type { WriteBatch } from "../model/store.ts"
import { resolveConfigSync } from "../model/config.ts"
import { StoreError } from "../model/errors.ts"
import type { InstanceRow } from "../model/instance.ts"
import { TaskKind, TaskStatus } from "../model/status.ts"
import type { TaskRow, TaskUpdate } from "../model/task.ts"
import type { TaskStoreShape } from "../ports/task-store.ts"

export const instanceRow = (id: string, overrides: Partial<InstanceRow> = {}): InstanceRow => ({
  id,
  job: "conformance",
  kind: "mapReduce",
  config: resolveConfigSync({}),
  params: "{}",
  localWorker: "local",
  startedAt: 1_000,
  seed: 42,
  nextSeq: 0,
  nextRun: 1,
  nextTriggerAt: null,
  context: {},
  runs: [{ run: 0, startedAt: 1_000, created: 0, succeeded: 0, failed: 0, finalCreated: false }],
  history: [],
  outcome: null,
  outcomeAcked: false,
  ...overrides
})

export const taskRow = (seq: number, overrides: Partial<TaskRow> = {}): TaskRow => ({
  id: seq === 0 ? "0" : `0.${seq}`,
  seq,
  run: 0,
  name: seq === 0 ? "ROOT" : "work",
  kind: seq === 0 ? TaskKind.Root : TaskKind.Sub,
  body: JSON.stringify({ n: seq }),
  status: TaskStatus.Waiting,
  worker: null,
  attempt: 0,
  failures: 0,
  redeliveries: 0,
  childCount: 0,
  dueAt: null,
  result: null,
  resultCut: false,
  lastError: null,
  ...overrides
})

export const updateOf = (row: TaskRow, change: Partial<TaskUpdate>): TaskUpdate => ({
  id: row.id,
  seq: row.seq,
  status: row.status,
  worker: row.worker,
  attempt: row.attempt,
  failures: row.failures,
  redeliveries: row.redeliveries,
  childCount: row.childCount,
  dueAt: row.dueAt,
  result: row.result,
  resultCut: row.resultCut,
  lastError: row.lastError,
  ...change
})

const batch = (instance: InstanceRow, parts: Partial<Omit<WriteBatch, "instance">>): WriteBatch => ({
  instance,
  inserts: [],
  updates: [],
  deleteRuns: [],
  deleteInstance: false,
  ...parts
})

/**
 * The behaviour every TaskStore must have, as a vitest suite. Call it from an adapter's tests with a
 * factory that gives a fresh, empty store: `taskStoreConformance("sqlite", () => openStore(":memory:"))`.
 */
export const taskStoreConformance = (name: string, makeStore: () => TaskStoreShape | Promise<TaskStoreShape>): void => {
  const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
  const fails = <A>(effect: Effect.Effect<A, StoreError>) => Effect.runPromise(Effect.flip(effect))

  describe(`TaskStore conformance: ${name}`, () => {
    it("stores inserted tasks and the instance row, and reads them back by id", async () => {
      const store = await makeStore()
      const instance = instanceRow("a", { context: { k: [1, "two"] }, nextSeq: 3 })
      const rows = [taskRow(0), taskRow(1), taskRow(2, { body: new Uint8Array([0, 1, 255]) })]
      await run(store.apply(batch(instance, { inserts: rows })))
      const read = await run(store.readTasks("a", ["0.2", "0", "missing"]))
      expect(read.map((row) => row.id).sort()).toEqual(["0", "0.2"])
      const bytes = read.find((row) => row.id === "0.2")?.body
      expect(bytes).toBeInstanceOf(Uint8Array)
      expect([...(bytes as Uint8Array)]).toEqual([0, 1, 255])
      expect(read.find((row) => row.id === "0")).toEqual(rows[0])
      const loaded = await run(store.load("a"))
      expect(loaded?.instance).toEqual(instance)
      expect(await run(store.listInstances())).toEqual(["a"])
    })

    it("applies updates to the mutable fields only", async () => {
      const store = await makeStore()
      const instance = instanceRow("b")
      const row = taskRow(1)
      await run(store.apply(batch(instance, { inserts: [taskRow(0), row] })))
      const update = updateOf(row, {
        status: TaskStatus.Succeeded,
        worker: "w1",
        attempt: 2,
        failures: 1,
        result: '"ok"',
        lastError: "boom"
      })
      await run(store.apply(batch(instance, { updates: [update] })))
      const [read] = await run(store.readTasks("b", ["0.1"]))
      expect(read).toEqual({ ...row, ...update })
    })

    it("rejects a batch with a duplicate insert and changes nothing", async () => {
      const store = await makeStore()
      const before = instanceRow("c")
      await run(store.apply(batch(before, { inserts: [taskRow(0), taskRow(1)] })))
      const after = instanceRow("c", { nextSeq: 99 })
      const error = await fails(
        store.apply(
          batch(after, {
            inserts: [taskRow(2), taskRow(1, { name: "dup" })],
            updates: [updateOf(taskRow(0), { status: TaskStatus.Dispatched })]
          })
        )
      )
      expect(error).toBeInstanceOf(StoreError)
      expect(await run(store.readTasks("c", ["0.2"]))).toEqual([])
      expect((await run(store.readTasks("c", ["0"])))[0]?.status).toBe(TaskStatus.Waiting)
      expect((await run(store.readTasks("c", ["0.1"])))[0]?.name).toBe("work")
      expect((await run(store.load("c")))?.instance).toEqual(before)
    })

    it("rejects a batch updating a task it does not hold and changes nothing", async () => {
      const store = await makeStore()
      const instance = instanceRow("d")
      await run(store.apply(batch(instance, { inserts: [taskRow(0)] })))
      const error = await fails(
        store.apply(
          batch(instance, { inserts: [taskRow(1)], updates: [updateOf(taskRow(7), { status: TaskStatus.Failed })] })
        )
      )
      expect(error).toBeInstanceOf(StoreError)
      expect(await run(store.readTasks("d", ["0.1", "0.7"]))).toEqual([])
    })

    it("pages terminal results of one run in seq order", async () => {
      const store = await makeStore()
      const instance = instanceRow("e")
      const rows: TaskRow[] = []
      for (let seq = 0; seq < 25; seq++) {
        const status = seq % 5 === 4 ? TaskStatus.Running : seq % 3 === 0 ? TaskStatus.Failed : TaskStatus.Succeeded
        rows.push(
          taskRow(seq, {
            status,
            result: status === TaskStatus.Succeeded ? String(seq) : null,
            lastError: status === TaskStatus.Failed ? `e${seq}` : null
          })
        )
      }
      rows.push(
        taskRow(25, { id: "1", run: 1, name: "ROOT", kind: TaskKind.Root, status: TaskStatus.Succeeded, result: "1" })
      )
      await run(store.apply(batch(instance, { inserts: rows })))
      const seen: number[] = []
      for (let after = -1; ; ) {
        const page = await run(store.readResults("e", 0, after, 4))
        seen.push(...page.map((result) => result.seq))
        if (page.length < 4) break
        after = (page[page.length - 1] as { seq: number }).seq
      }
      const expected = rows.filter((row) => row.run === 0 && row.status >= TaskStatus.Failed).map((row) => row.seq)
      expect(seen).toEqual(expected)
      const [first] = await run(store.readResults("e", 0, -1, 1))
      expect(first).toEqual({
        id: "0",
        seq: 0,
        name: "ROOT",
        status: TaskStatus.Failed,
        result: null,
        resultCut: false,
        lastError: "e0"
      })
      expect((await run(store.readResults("e", 1, -1, 10))).map((result) => result.id)).toEqual(["1"])
    })

    it("loads live tasks in seq order and counts terminal ones by name, worker and status", async () => {
      const store = await makeStore()
      const instance = instanceRow("f")
      const rows = [
        taskRow(0, { status: TaskStatus.Succeeded, worker: "local", result: "null" }),
        taskRow(1, { status: TaskStatus.Running, worker: "w1" }),
        taskRow(2, { status: TaskStatus.Succeeded, worker: "w1", result: "1" }),
        taskRow(3, { status: TaskStatus.Succeeded, worker: "w1", result: "1" }),
        taskRow(4, { status: TaskStatus.Failed, worker: "w2", lastError: "x" }),
        taskRow(5)
      ]
      await run(store.apply(batch(instance, { inserts: rows })))
      const loaded = await run(store.load("f"))
      expect(loaded?.live.map((row) => row.id)).toEqual(["0.1", "0.5"])
      const counts = [...(loaded?.terminal ?? [])].sort((a, b) =>
        `${a.name}${a.worker}${a.status}`.localeCompare(`${b.name}${b.worker}${b.status}`)
      )
      expect(counts).toEqual([
        { name: "ROOT", worker: "local", status: TaskStatus.Succeeded, count: 1 },
        { name: "work", worker: "w1", status: TaskStatus.Succeeded, count: 2 },
        { name: "work", worker: "w2", status: TaskStatus.Failed, count: 1 }
      ])
      expect(await run(store.load("nope"))).toBeUndefined()
    })

    it("deletes the tasks of a finished run, and a whole instance", async () => {
      const store = await makeStore()
      const instance = instanceRow("g")
      await run(
        store.apply(
          batch(instance, { inserts: [taskRow(0), taskRow(1, { id: "1", run: 1 }), taskRow(2, { id: "1.1", run: 1 })] })
        )
      )
      await run(store.apply(batch(instance, { deleteRuns: [1] })))
      expect((await run(store.readTasks("g", ["0", "1", "1.1"]))).map((row) => row.id)).toEqual(["0"])
      await run(store.apply(batch(instance, { deleteInstance: true })))
      expect(await run(store.load("g"))).toBeUndefined()
      expect(await run(store.listInstances())).toEqual([])
    })

    it("keeps instances apart", async () => {
      const store = await makeStore()
      await run(store.apply(batch(instanceRow("h1"), { inserts: [taskRow(0)] })))
      await run(store.apply(batch(instanceRow("h2"), { inserts: [taskRow(0, { name: "OTHER" })] })))
      expect((await run(store.readTasks("h1", ["0"])))[0]?.name).toBe("ROOT")
      expect((await run(store.readTasks("h2", ["0"])))[0]?.name).toBe("OTHER")
      expect([...(await run(store.listInstances()))].sort()).toEqual(["h1", "h2"])
    })

    it("applies a batch of 10,000 inserts and 10,000 updates at once", async () => {
      const store = await makeStore()
      const instance = instanceRow("big")
      const rows = Array.from({ length: 10_000 }, (_, seq) => taskRow(seq))
      await run(store.apply(batch(instance, { inserts: rows })))
      await run(
        store.apply(
          batch(instance, {
            updates: rows.map((row) => updateOf(row, { status: TaskStatus.Succeeded, result: String(row.seq) }))
          })
        )
      )
      let total = 0
      for (let after = -1; ; ) {
        const page = await run(store.readResults("big", 0, after, 1_000))
        total += page.length
        if (page.length < 1_000) break
        after = (page[page.length - 1] as { seq: number }).seq
      }
      expect(total).toBe(10_000)
    })
  })
}
