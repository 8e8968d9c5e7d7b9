import { StoreError } from "@taskfold/core"
import { TaskStatus, TaskStore, type WriteBatch } from "@taskfold/core/adapter"
import { instanceRow, sqlStoreSuite, taskRow, taskStoreConformance, updateOf } from "@taskfold/core/testing"
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { DatabaseSync } from "node:sqlite"
import { describe, expect, it } from "vitest"
import { SqliteStoreLayer } from "../src/index.ts"
import { tempDatabases } from "./temp-db.ts"

const databases = tempDatabases()

taskStoreConformance("sqlite :memory:", () => databases.open(":memory:"))
taskStoreConformance("sqlite file", () => databases.open(databases.path()))
sqlStoreSuite("node:sqlite", () => databases.driver(databases.path()))

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
const failure = <A>(effect: Effect.Effect<A, StoreError>) => Effect.runPromise(Effect.flip(effect))

const batch = (
  id: string,
  parts: Partial<Omit<WriteBatch, "instance">> & { instance?: WriteBatch["instance"] }
): WriteBatch => ({
  instance: instanceRow(id),
  inserts: [],
  updates: [],
  deleteRuns: [],
  deleteInstance: false,
  ...parts
})

/** A second connection to the same file, to look at what the store wrote. */
const inspect = <A>(file: string, look: (db: DatabaseSync) => A): A => {
  const db = new DatabaseSync(file)
  try {
    return look(db)
  } finally {
    db.close()
  }
}

describe("sqlite store on a file", () => {
  it("uses WAL and keeps what it committed across a close and a reopen", async () => {
    const file = databases.path()
    const first = databases.open(file)
    await run(first.apply(batch("a", { inserts: [taskRow(0), taskRow(1)] })))
    await run(
      first.apply(
        batch("a", { updates: [updateOf(taskRow(1), { status: TaskStatus.Succeeded, worker: "w", result: "2" })] })
      )
    )
    first.close()
    expect(inspect(file, (db) => db.prepare("PRAGMA journal_mode").get())).toEqual({ journal_mode: "wal" })
    const second = databases.open(file)
    expect(await run(second.listInstances())).toEqual(["a"])
    expect(await run(second.readResults("a", 0, -1, 10))).toEqual([
      { id: "0.1", seq: 1, name: "work", status: TaskStatus.Succeeded, result: "2", resultCut: false, lastError: null }
    ])
  })

  it("keeps a body's type: a string stays a string, bytes stay a Uint8Array", async () => {
    const file = databases.path()
    const store = databases.open(file)
    const bodies = ["", "\u0000\u00ff text", new Uint8Array([]), new Uint8Array([104, 105])]
    const rows = bodies.map((body, seq) => taskRow(seq, { body }))
    await run(store.apply(batch("b", { inserts: rows })))
    store.close()
    const read = await run(
      databases.open(file).readTasks(
        "b",
        rows.map((row) => row.id)
      )
    )
    expect(read.map((row) => row.body)).toEqual(bodies)
    expect(read.map((row) => typeof row.body)).toEqual(["string", "string", "object", "object"])
    expect(read[3]?.body).toBeInstanceOf(Uint8Array)
  })

  it("rolls a failed batch back whole, the instance row with it, and names the reason", async () => {
    const store = databases.open(databases.path())
    const before = instanceRow("c")
    await run(store.apply(batch("c", { instance: before, inserts: [taskRow(0), taskRow(1)] })))
    const after = instanceRow("c", { nextSeq: 50 })
    const duplicate = await failure(
      store.apply(batch("c", { instance: after, inserts: [taskRow(2), taskRow(3), taskRow(1)] }))
    )
    expect(duplicate).toBeInstanceOf(StoreError)
    expect(duplicate.reason).toBe("conflict")
    // An update whose seq holds another task, after good inserts and updates in the same batch.
    const wrongId = await failure(
      store.apply(
        batch("c", {
          instance: after,
          inserts: [taskRow(2)],
          updates: [updateOf(taskRow(0), { status: TaskStatus.Dispatched }), updateOf(taskRow(1), { id: "0.9" })]
        })
      )
    )
    expect(wrongId.reason).toBe("not-found")
    const stored = await run(store.load("c"))
    expect(stored?.instance).toEqual(before)
    expect(stored?.live.map((row) => [row.id, row.status])).toEqual([
      ["0", TaskStatus.Waiting],
      ["0.1", TaskStatus.Waiting]
    ])
    // The store is still usable: the lock was released by the rollback.
    await run(store.apply(batch("c", { instance: after, inserts: [taskRow(2)] })))
    expect((await run(store.load("c")))?.live).toHaveLength(3)
  })

  it("rolls back a large batch whose duplicate sits inside a multi-row insert chunk", async () => {
    const store = databases.open(databases.path())
    await run(store.apply(batch("big", { inserts: [taskRow(0)] })))
    // 100 new rows, the 50th repeating task "0" under a new seq: caught by the unique (instance, id) index.
    const rows = Array.from({ length: 100 }, (_, i) => taskRow(i + 1))
    rows[49] = taskRow(50, { id: "0" })
    const error = await failure(store.apply(batch("big", { inserts: rows })))
    expect(error.reason).toBe("conflict")
    expect((await run(store.load("big")))?.live.map((row) => row.id)).toEqual(["0"])
    // Without the duplicate all of it goes in.
    rows[49] = taskRow(50)
    await run(store.apply(batch("big", { inserts: rows })))
    expect((await run(store.load("big")))?.live).toHaveLength(101)
  })

  it("fails with StoreError 'unavailable' once closed, never throws", async () => {
    const store = databases.open(databases.path())
    store.close()
    store.close()
    expect((await failure(store.apply(batch("d", { inserts: [taskRow(0)] })))).reason).toBe("unavailable")
    expect((await failure(store.load("d"))).reason).toBe("unavailable")
    expect((await failure(store.listInstances())).reason).toBe("unavailable")
  })

  it("reports an instance row that does not decode as corrupt", async () => {
    const file = databases.path()
    const store = databases.open(file)
    await run(store.apply(batch("e", { inserts: [taskRow(0)] })))
    inspect(file, (db) =>
      db
        .prepare("UPDATE taskfold_instances SET row = ? WHERE id = 'e'")
        .run(JSON.stringify({ id: "e", kind: "nonsense" }))
    )
    expect((await failure(store.load("e"))).reason).toBe("corrupt")
  })

  it("refuses a database written with a newer schema version, and a file of the layout before it", () => {
    const newer = databases.path()
    databases.open(newer).close()
    inspect(newer, (db) => db.exec("UPDATE taskfold_schema SET version = 99"))
    expect(() => databases.open(newer)).toThrow(/schema version 99/)
    // Before the shared SQL schema the Node store kept its version in user_version, its tables unprefixed.
    const older = databases.path()
    inspect(older, (db) => db.exec("CREATE TABLE tasks (instance INTEGER); PRAGMA user_version = 1"))
    expect(() => databases.open(older)).toThrow(StoreError)
    expect(() => databases.open(older)).toThrow(/older taskfold/)
  })

  it("finds tasks by id through the (instance, id) index; the partial results index serves the results query", () => {
    const file = databases.path()
    databases.open(file).close()
    const plan = (sql: string) =>
      inspect(file, (db) =>
        db
          .prepare(`EXPLAIN QUERY PLAN ${sql}`)
          .all()
          .map((step) => (step as { detail: string }).detail)
          .join("; ")
      )
    expect(plan("SELECT * FROM taskfold_tasks WHERE instance = 1 AND id = '0.1'")).toContain(
      "USING INDEX taskfold_tasks_by_id"
    )
    // The planner picks: the primary key when nearly all rows are terminal (reduce's case), the partial
    // index when they are few. INDEXED BY fails to prepare unless the index can answer the query.
    expect(
      plan(
        `SELECT seq FROM taskfold_tasks INDEXED BY taskfold_tasks_results
         WHERE instance = 1 AND run = 0 AND seq > 5 AND status >= 5 ORDER BY seq LIMIT 10`
      )
    ).toContain("USING INDEX taskfold_tasks_results")
  })

  it("deleting an instance removes its tasks, so a new instance of the same id starts empty", async () => {
    const store = databases.open(databases.path())
    await run(store.apply(batch("f", { inserts: [taskRow(0), taskRow(1)] })))
    await run(store.apply(batch("f", { deleteInstance: true })))
    await run(store.apply(batch("f", { inserts: [taskRow(0, { name: "AGAIN" })] })))
    expect((await run(store.load("f")))?.live.map((row) => row.name)).toEqual(["AGAIN"])
  })

  it("as a Layer: opens the database for the scope and closes it after", async () => {
    const file = databases.path()
    await run(
      Effect.scoped(
        Effect.gen(function* () {
          const store = yield* TaskStore
          yield* store.apply(batch("g", { inserts: [taskRow(0)] }))
        }).pipe(Effect.provide(SqliteStoreLayer(file)))
      )
    )
    // Closed: the last connection to close checkpoints the log into the file and deletes it.
    expect(existsSync(`${file}-wal`)).toBe(false)
    const ids = inspect(file, (db) =>
      db
        .prepare("SELECT id FROM taskfold_instances")
        .all()
        .map((row) => (row as { id: string }).id)
    )
    expect(ids).toEqual(["g"])
  })
})
