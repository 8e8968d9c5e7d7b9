import "fake-indexeddb/auto"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { StoreError } from "@taskfold/core"
import { TaskStore } from "@taskfold/core/adapter"
import { instanceRow, taskRow, taskStoreConformance, updateOf } from "@taskfold/core/testing"
import { deleteIdbStore, IdbStoreLayer, openIdbStore } from "../../src/index.ts"

let databases = 0
taskStoreConformance("IndexedDB (fake-indexeddb, Node)", () => openIdbStore({ name: `conformance-${++databases}` }))

const batch = (
  id: string,
  parts: Partial<{ inserts: ReturnType<typeof taskRow>[]; updates: ReturnType<typeof updateOf>[] }>
) => ({
  instance: instanceRow(id),
  inserts: parts.inserts ?? [],
  updates: parts.updates ?? [],
  deleteRuns: [],
  deleteInstance: false
})

describe("IndexedDB store", () => {
  it("R-REC-1 what one connection wrote, a new connection to the same database reads (a page reload)", async () => {
    const first = await openIdbStore({ name: "reopen" })
    const body = new Uint8Array([7, 8, 9])
    await Effect.runPromise(
      first.apply(
        batch("r", {
          inserts: [
            taskRow(0, { status: 6, worker: "page", result: "1" }),
            taskRow(1, { body, status: 3, worker: "web-1" })
          ]
        })
      )
    )
    first.close()
    const second = await openIdbStore({ name: "reopen" })
    const loaded = await Effect.runPromise(second.load("r"))
    expect(loaded?.live.map((row) => [row.id, row.status, row.worker])).toEqual([["0.1", 3, "web-1"]])
    expect([...(loaded!.live[0]!.body as Uint8Array)]).toEqual([7, 8, 9])
    expect(loaded?.terminal).toEqual([{ name: "ROOT", worker: "page", status: 6, count: 1 }])
    second.close()
    await deleteIdbStore("reopen")
    const third = await openIdbStore({ name: "reopen" })
    expect(await Effect.runPromise(third.listInstances())).toEqual([])
    third.close()
  })

  it("a closed connection answers every call with StoreError unavailable", async () => {
    const store = await openIdbStore({ name: "closed" })
    store.close()
    const error = await Effect.runPromise(Effect.flip(store.apply(batch("c", { inserts: [taskRow(0)] }))))
    expect(error).toBeInstanceOf(StoreError)
    expect(error.reason).toBe("unavailable")
    expect((await Effect.runPromise(Effect.flip(store.listInstances()))).reason).toBe("unavailable")
  })

  it("an update of a task the store does not hold is not-found, and its whole batch is undone", async () => {
    const store = await openIdbStore({ name: "undo" })
    await Effect.runPromise(store.apply(batch("u", { inserts: [taskRow(0)] })))
    const error = await Effect.runPromise(
      Effect.flip(
        store.apply(
          batch("u", {
            inserts: [taskRow(1)],
            updates: [updateOf(taskRow(0), { status: 2 }), updateOf(taskRow(5), { status: 2 })]
          })
        )
      )
    )
    expect(error.reason).toBe("not-found")
    expect((await Effect.runPromise(store.readTasks("u", ["0", "0.1"]))).map((row) => [row.id, row.status])).toEqual([
      ["0", 1]
    ])
    store.close()
  })

  it("IdbStoreLayer provides the TaskStore service and closes the connection with its scope", async () => {
    const ids = await Effect.runPromise(
      Effect.gen(function* () {
        const store = yield* TaskStore
        yield* store.apply(batch("layer", { inserts: [taskRow(0)] }))
        return yield* store.listInstances()
      }).pipe(Effect.provide(IdbStoreLayer({ name: "layer" })))
    )
    expect(ids).toEqual(["layer"])
  })
})
