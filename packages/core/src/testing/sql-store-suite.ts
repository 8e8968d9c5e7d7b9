import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { StoreError } from "../model/errors.ts"
import type { Outcome, Progress } from "../model/instance.ts"
import { TaskKind, TaskStatus } from "../model/status.ts"
import type { WriteBatch } from "../model/store.ts"
import type { TaskRow } from "../model/task.ts"
import type { OutcomeRecord } from "../ports/outcome-log.ts"
import type { SqlDriver, SqlStatement } from "../sql/driver.ts"
import { makeSqlOutcomeLog } from "../sql/outcome-log.ts"
import { makeSqlStore } from "../sql/store.ts"
import { instanceRow, taskRow, taskStoreConformance, updateOf } from "./task-store-conformance.ts"

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
const fails = <A>(effect: Effect.Effect<A, StoreError>) => Effect.runPromise(Effect.flip(effect))

const batch = (id: string, parts: Partial<WriteBatch>): WriteBatch => ({
  instance: instanceRow(id),
  inserts: [],
  updates: [],
  deleteRuns: [],
  deleteInstance: false,
  ...parts
})

/** The same driver, whose transactions run a statement the engine refuses in place of statement `at`. */
const failingAt = (driver: SqlDriver, at: number): SqlDriver => ({
  ...driver,
  transaction: (statements, mode) =>
    driver.transaction(
      (function* () {
        let index = 0
        for (const statement of statements) {
          yield index++ === at ? { sql: "INSERT INTO taskfold_no_such_table VALUES (1)", params: [] } : statement
        }
      })(),
      mode
    )
})

/** The same driver at a lower parameter limit, keeping every statement of every transaction. */
const recording = (driver: SqlDriver, maxParams: number) => {
  const transactions: SqlStatement[][] = []
  const limited: SqlDriver = {
    ...driver,
    maxParams,
    transaction: (statements, mode) => {
      const seen: SqlStatement[] = []
      transactions.push(seen)
      return driver.transaction(
        (function* () {
          for (const statement of statements) {
            seen.push(statement)
            yield statement
          }
        })(),
        mode
      )
    }
  }
  return { driver: limited, transactions }
}

const placeholders = (sql: string) => sql.split("?").length - 1

const outcome = (id: string, result: string, finishedAt = 0): OutcomeRecord => ({
  instanceId: id,
  job: "sum",
  outcome: { ok: true, result, finishedAt } as unknown as Outcome,
  progress: { instanceId: id, done: true } as unknown as Progress
})

/**
 * What core's SQL store must do on any SqlDriver beyond the TaskStore conformance suite: all-or-nothing
 * batches when the engine fails mid-transaction, statements chunked within the parameter limit, the row
 * codec, the outcome log. `makeDriver` gives a driver on a fresh, empty database.
 */
export const sqlStoreSuite = (name: string, makeDriver: () => SqlDriver | Promise<SqlDriver>): void => {
  const store = async (driver?: SqlDriver) => run(makeSqlStore(driver ?? (await makeDriver())))

  taskStoreConformance(`${name}, 40 parameters per statement`, async () =>
    run(makeSqlStore({ ...(await makeDriver()), maxParams: 40 }))
  )

  describe(`SQL store: ${name}`, () => {
    it("R-MAP-1 R-RETRY-4 a batch failing mid-transaction is all or nothing: StoreError, no change", async () => {
      const driver = await makeDriver()
      const good = await store(driver)
      const before = instanceRow("f", { nextSeq: 2 })
      const stored = [taskRow(0), taskRow(1)]
      await run(good.apply(batch("f", { instance: before, inserts: stored })))
      const after = instanceRow("f", { nextSeq: 40 })
      const change = batch("f", {
        instance: after,
        inserts: Array.from({ length: 38 }, (_, i) => taskRow(i + 2)),
        updates: stored.map((row) => updateOf(row, { status: TaskStatus.Succeeded, worker: "w", result: "1" })),
        deleteRuns: [5]
      })
      // Each statement in turn fails, the instance row's first, until a batch has no statement left to fail.
      for (let at = 0; ; at++) {
        const exit = await Effect.runPromiseExit((await store(failingAt(driver, at))).apply(change))
        if (exit._tag === "Success") break
        const error = await fails(Effect.failCause(exit.cause))
        expect(error).toBeInstanceOf(StoreError)
        expect(error.reason).toBe("unavailable")
        const loaded = await run(good.load("f"))
        expect(loaded?.instance).toEqual(before)
        expect(loaded?.live).toEqual(stored)
        expect(loaded?.terminal).toEqual([])
        expect(at).toBeLessThan(100)
      }
      // Applied whole once nothing failed; the failed transactions left no lock and no half-written rows.
      const loaded = await run(good.load("f"))
      expect(loaded?.instance).toEqual(after)
      expect(loaded?.live.map((row) => row.seq)).toEqual(Array.from({ length: 38 }, (_, i) => i + 2))
    })

    it("a 100-row batch at 40 parameters per statement spans many statements, each within the limit", async () => {
      const { driver, transactions } = recording(await makeDriver(), 40)
      const limited = await store(driver)
      const rows = Array.from({ length: 100 }, (_, seq) => taskRow(seq))
      transactions.length = 0
      await run(limited.apply(batch("c", { inserts: rows })))
      await run(
        limited.apply(
          batch("c", { updates: rows.map((row) => updateOf(row, { status: TaskStatus.Running, worker: "w" })) })
        )
      )
      const [inserted, updated] = transactions
      // 16 parameters a row: two rows per INSERT; 12 an update: three per UPDATE; plus the instance row.
      expect(inserted?.length).toBeGreaterThanOrEqual(50)
      expect(updated?.length).toBeGreaterThanOrEqual(34)
      for (const statement of transactions.flat()) {
        expect(statement.params.length).toBeLessThanOrEqual(40)
        expect(placeholders(statement.sql)).toBe(statement.params.length)
      }
      const read = await run(
        limited.readTasks(
          "c",
          rows.map((row) => row.id)
        )
      )
      expect(read).toEqual(rows.map((row) => ({ ...row, status: TaskStatus.Running, worker: "w" })))
      // An update naming a task not stored, in the last statement: not-found, the 99 before it undone.
      const missing = rows.map((row) => updateOf(row, { status: TaskStatus.Succeeded, result: "2" }))
      missing[99] = updateOf(taskRow(500), { status: TaskStatus.Succeeded })
      const error = await fails(limited.apply(batch("c", { updates: missing })))
      expect(error.reason).toBe("not-found")
      expect(error.message).toContain("0.500")
      expect((await run(limited.readResults("c", 0, -1, 10))).length).toBe(0)
    })

    it("refuses a driver whose parameter limit cannot hold one task row", async () => {
      const error = await fails(makeSqlStore({ ...(await makeDriver()), maxParams: 7 }))
      expect(error).toBeInstanceOf(StoreError)
    })

    it("keeps every field of a task row, each with its own value", async () => {
      const sql = await store()
      const row: TaskRow = {
        id: "0.7",
        seq: 7,
        run: 3,
        name: "field test",
        kind: TaskKind.Broadcast,
        body: new Uint8Array([9, 8, 7]),
        status: TaskStatus.Received,
        worker: "worker 9",
        attempt: 4,
        failures: 5,
        redeliveries: 6,
        childCount: 11,
        dueAt: 1_700_000_000_123.5,
        result: '"r"',
        resultCut: true,
        lastError: '{"tag":"E"}'
      }
      await run(sql.apply(batch("k", { inserts: [row] })))
      expect(await run(sql.readTasks("k", ["0.7"]))).toEqual([row])
      const changed = updateOf(row, { status: TaskStatus.Succeeded, attempt: 8, dueAt: null, resultCut: false })
      await run(sql.apply(batch("k", { updates: [changed] })))
      expect(await run(sql.readTasks("k", ["0.7"]))).toEqual([{ ...row, ...changed }])
    })

    it("R-FIN-6 the outcome log keeps a record per instance, newest first; a record put again moves up", async () => {
      const log = await run(makeSqlOutcomeLog(await makeDriver()))
      await run(log.put(outcome("a", "1")))
      await run(log.put(outcome("b", "2")))
      await run(log.put(outcome("a", "3")))
      expect(await run(log.get("a"))).toEqual(outcome("a", "3"))
      expect(await run(log.get("none"))).toBeUndefined()
      expect(await run(log.list(10))).toEqual([outcome("a", "3"), outcome("b", "2")])
      expect(await run(log.list(1))).toEqual([outcome("a", "3")])
    })

    it("the outcome log keeps the newest maxRecords records, and none older than maxAgeMs", async () => {
      const driver = await makeDriver()
      const log = await run(makeSqlOutcomeLog(driver, { maxRecords: 3 }))
      for (const id of ["a", "b", "c", "d", "e"]) await run(log.put(outcome(id, id)))
      expect((await run(log.list(10))).map((record) => record.instanceId)).toEqual(["e", "d", "c"])
      expect(await run(log.get("a"))).toBeUndefined()
      const aged = await run(makeSqlOutcomeLog(await makeDriver(), { maxAgeMs: 1_000 }))
      await run(aged.put(outcome("old", "1", 10_000)))
      await run(aged.put(outcome("recent", "2", 70_500)))
      await run(aged.put(outcome("new", "3", 71_000)))
      expect((await run(aged.list(10))).map((record) => record.instanceId)).toEqual(["new", "recent"])
    })
  })
}
