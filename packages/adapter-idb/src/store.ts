import { Effect, Layer } from "effect"
import { deleteDB, openDB, type DBSchema, type IDBPDatabase } from "idb"
import { StoreError, type TaskBody } from "@taskfold/core"
import {
  isTerminal,
  TaskStore,
  type InstanceRow,
  type StoredInstance,
  type StoredResult,
  type TaskRow,
  type TaskStoreShape,
  type WriteBatch
} from "@taskfold/core/adapter"

/**
 * A task as stored, without its body: every field of TaskRow but `body`, the instance it belongs to,
 * and `done` (1 when terminal) so the results index holds terminal tasks apart from live ones.
 * Bodies live in their own object store under the same key: they are written once, while the row is
 * rewritten at every status change.
 */
type StoredTask = Omit<TaskRow, "body"> & { readonly instance: string; readonly done: 0 | 1 }

type TaskKey = [instance: string, seq: number]

interface TaskfoldDB extends DBSchema {
  instances: { key: string; value: InstanceRow }
  tasks: {
    key: TaskKey
    value: StoredTask
    indexes: {
      /** [instance, id]: a task by its id. */
      byId: [string, string]
      /** [instance, run, done, seq]: the terminal tasks of a run in seq order (reduce), or a run's tasks (delete). */
      results: [string, number, number, number]
    }
  }
  bodies: { key: TaskKey; value: TaskBody }
}

const SCHEMA_VERSION = 1
const STORES = ["instances", "tasks", "bodies"] as const
/** Rows read per request while loading an instance. */
const LOAD_PAGE = 2_000

/** Every key of one instance: [id, anything]. An array sorts after every number, so [id, []] ends the range. */
const instanceRange = (instanceId: string) => IDBKeyRange.bound([instanceId], [instanceId, []])
/** Every task of one run, in the results index. */
const runRange = (instanceId: string, run: number) => IDBKeyRange.bound([instanceId, run], [instanceId, run, []])

// Core's TaskRow is the row codec: a stored task is the row without its body, with its instance and `done`.
const storedTask = (instance: string, { body: _, ...row }: TaskRow): StoredTask => ({
  ...row,
  instance,
  done: isTerminal(row.status) ? 1 : 0
})

const taskRow = ({ instance: _, done: __, ...stored }: StoredTask, body: TaskBody): TaskRow => ({ ...stored, body })

/** A byte body is stored as its own bytes: a view into a larger buffer would store (and clone) all of it. */
const storedBody = (body: TaskBody): TaskBody =>
  typeof body === "string" || (body.byteOffset === 0 && body.byteLength === body.buffer.byteLength)
    ? body
    : body.slice()

/** A failure of this store's own making, thrown inside a transaction to abort it. */
class Refused extends Error {
  readonly reason: StoreError["reason"]
  constructor(reason: StoreError["reason"], message: string) {
    super(message)
    this.reason = reason
  }
}

const toStoreError = (error: unknown): StoreError => {
  if (error instanceof StoreError) return error
  if (error instanceof Refused) return new StoreError({ reason: error.reason, message: error.message })
  const name = typeof error === "object" && error !== null && "name" in error ? String(error.name) : ""
  const message = error instanceof Error ? error.message : String(error)
  switch (name) {
    case "ConstraintError":
      return new StoreError({ reason: "conflict", message: `IndexedDB refused the batch: ${message}` })
    case "DataError":
    case "DataCloneError":
      return new StoreError({ reason: "corrupt", message: `IndexedDB could not store a value: ${message}` })
    default:
      return new StoreError({
        reason: "unavailable",
        message: `IndexedDB failed${name ? ` (${name})` : ""}: ${message}`
      })
  }
}

/** Observes a request's promise so that an aborted transaction leaves no unhandled rejection behind. */
const settle = (promise: Promise<unknown>, onError: (error: unknown) => void): void => {
  promise.then(undefined, onError)
}

export interface IdbStoreOptions {
  /** Database name; one database holds any number of instances. Default "taskfold". */
  readonly name?: string
}

export interface IdbStore extends TaskStoreShape {
  readonly name: string
  readonly db: IDBPDatabase<TaskfoldDB>
  /** Closes the connection; later calls fail with StoreError "unavailable". */
  readonly close: () => void
}

/**
 * A TaskStore on IndexedDB. Every write batch is one readwrite transaction over the object stores it
 * touches; inside it nothing is awaited but IndexedDB requests (a transaction commits by itself once
 * the event loop has no request of it left), and a batch that fails aborts the transaction, so it
 * changes nothing. Rows are keyed by [instance, seq], so a plain key range reads them in reduce's order.
 */
export const openIdbStore = async (options: IdbStoreOptions = {}): Promise<IdbStore> => {
  const name = options.name ?? "taskfold"
  let closed = false
  const db = await openDB<TaskfoldDB>(name, SCHEMA_VERSION, {
    upgrade(database, oldVersion) {
      if (oldVersion < 1) {
        database.createObjectStore("instances", { keyPath: "id" })
        const tasks = database.createObjectStore("tasks", { keyPath: ["instance", "seq"] })
        tasks.createIndex("byId", ["instance", "id"], { unique: true })
        tasks.createIndex("results", ["instance", "run", "done", "seq"])
        database.createObjectStore("bodies")
      }
    },
    // Another page wants to upgrade or delete the database: let it, this connection answers "unavailable" from now on.
    blocking() {
      closed = true
      db.close()
    },
    terminated() {
      closed = true
    }
  })

  const transaction = <Mode extends IDBTransactionMode>(mode: Mode) => {
    if (closed) throw new Refused("unavailable", `IndexedDB database ${name} is closed`)
    const tx = db.transaction(STORES, mode)
    // `done` rejects when the transaction aborts, maybe before anyone awaits it: observe it from the start.
    settle(tx.done, () => undefined)
    return tx
  }

  const applyBatch = async (batch: WriteBatch): Promise<void> => {
    const instanceId = batch.instance.id
    const tx = transaction("readwrite")
    let failure: unknown
    const fail = (error: unknown) => {
      failure ??= error
    }
    const done = tx.done
    try {
      const tasks = tx.objectStore("tasks")
      const bodies = tx.objectStore("bodies")
      const instances = tx.objectStore("instances")
      if (batch.deleteInstance) {
        settle(tasks.delete(instanceRange(instanceId)), fail)
        settle(bodies.delete(instanceRange(instanceId)), fail)
        settle(instances.delete(instanceId), fail)
        await done
        return
      }
      settle(instances.put(batch.instance), fail)
      // `add` refuses an existing [instance, seq] key and the unique [instance, id] index:
      // a duplicate aborts the batch.
      for (const row of batch.inserts) {
        settle(tasks.add(storedTask(instanceId, row)), fail)
        settle(bodies.add(storedBody(row.body), [instanceId, row.seq]), fail)
      }
      if (batch.updates.length > 0) {
        // All reads are queued at once; the writes follow in the same transaction, after the inserts above.
        const found = await Promise.all(batch.updates.map((update) => tasks.get([instanceId, update.seq])))
        for (let i = 0; i < batch.updates.length; i++) {
          const update = batch.updates[i]!
          const row = found[i]
          if (row === undefined || row.id !== update.id) {
            throw new Refused("not-found", `task ${update.id} (seq ${update.seq}) of ${instanceId} is not stored`)
          }
          settle(tasks.put({ ...row, ...update, done: isTerminal(update.status) ? 1 : 0 }), fail)
        }
      }
      if (batch.deleteRuns.length > 0) {
        const results = tasks.index("results")
        const keys = await Promise.all(batch.deleteRuns.map((run) => results.getAllKeys(runRange(instanceId, run))))
        for (const list of keys) {
          for (const key of list) {
            settle(tasks.delete(key), fail)
            settle(bodies.delete(key), fail)
          }
        }
      }
      await done
    } catch (error) {
      // The first failure is the cause; requests cut short by the abort fail after it.
      fail(error)
      try {
        tx.abort()
      } catch {
        // Aborted already (a request failed) or finished.
      }
      await done.catch(() => undefined)
      throw failure
    }
  }

  const readTasks = async (instanceId: string, ids: ReadonlyArray<string>): Promise<TaskRow[]> => {
    const tx = transaction("readonly")
    const byId = tx.objectStore("tasks").index("byId")
    const bodies = tx.objectStore("bodies")
    const found = await Promise.all(ids.map((id) => byId.get([instanceId, id])))
    const present = found.filter((row): row is StoredTask => row !== undefined)
    const bodyOf = await Promise.all(present.map((row) => bodies.get([instanceId, row.seq])))
    return present.map((row, i) => {
      const body = bodyOf[i]
      if (body === undefined) throw new Refused("corrupt", `task ${row.id} of ${instanceId} has no body`)
      return taskRow(row, body)
    })
  }

  const readResults = async (
    instanceId: string,
    run: number,
    afterSeq: number,
    limit: number
  ): Promise<StoredResult[]> => {
    const tx = transaction("readonly")
    const range = IDBKeyRange.bound([instanceId, run, 1, afterSeq], [instanceId, run, 1, Infinity], true, false)
    const rows = await tx.objectStore("tasks").index("results").getAll(range, limit)
    return rows.map((row) => ({
      id: row.id,
      seq: row.seq,
      name: row.name,
      status: row.status,
      result: row.result,
      resultCut: row.resultCut,
      lastError: row.lastError
    }))
  }

  const load = async (instanceId: string): Promise<StoredInstance | undefined> => {
    const tx = transaction("readonly")
    const instance = await tx.objectStore("instances").get(instanceId)
    if (instance === undefined) return undefined
    const tasks = tx.objectStore("tasks")
    const live: StoredTask[] = []
    const terminal = new Map<string, { name: string; worker: string | null; status: number; count: number }>()
    // Pages in key order, which is seq order; each page is one request of the same transaction.
    for (let after = -Infinity; ; ) {
      const page = await tasks.getAll(
        IDBKeyRange.bound([instanceId, after], [instanceId, Infinity], true, false),
        LOAD_PAGE
      )
      for (const row of page) {
        if (row.done === 0) {
          live.push(row)
          continue
        }
        const key = `${row.name}\u0000${row.worker ?? ""}\u0000${row.status}`
        const count = terminal.get(key)
        if (count === undefined) terminal.set(key, { name: row.name, worker: row.worker, status: row.status, count: 1 })
        else count.count++
      }
      if (page.length < LOAD_PAGE) break
      after = page[page.length - 1]!.seq
    }
    const bodies = tx.objectStore("bodies")
    const bodyOf = await Promise.all(live.map((row) => bodies.get([instanceId, row.seq])))
    const liveRows = live.map((row, i) => {
      const body = bodyOf[i]
      if (body === undefined) throw new Refused("corrupt", `task ${row.id} of ${instanceId} has no body`)
      return taskRow(row, body)
    })
    return { instance, live: liveRows, terminal: [...terminal.values()] }
  }

  const listInstances = async (): Promise<string[]> => {
    const tx = transaction("readonly")
    return tx.objectStore("instances").getAllKeys()
  }

  const run = <A>(what: () => Promise<A>): Effect.Effect<A, StoreError> =>
    Effect.tryPromise({ try: what, catch: toStoreError })

  return {
    name,
    db,
    close: () => {
      closed = true
      db.close()
    },
    apply: (batch) => run(() => applyBatch(batch)),
    readTasks: (instanceId, ids) => run(() => readTasks(instanceId, ids)),
    readResults: (instanceId, run_, afterSeq, limit) => run(() => readResults(instanceId, run_, afterSeq, limit)),
    load: (instanceId) => run(() => load(instanceId)),
    listInstances: () => run(listInstances)
  }
}

/** Deletes a whole database (every instance in it). Close open stores on it first. */
export const deleteIdbStore = (name = "taskfold"): Promise<void> => deleteDB(name)

/** The TaskStore service on IndexedDB; the connection closes with the layer's scope. */
export const IdbStoreLayer = (options: IdbStoreOptions = {}): Layer.Layer<TaskStore, StoreError> =>
  Layer.effect(
    TaskStore,
    Effect.acquireRelease(Effect.tryPromise({ try: () => openIdbStore(options), catch: toStoreError }), (store) =>
      Effect.sync(() => store.close())
    )
  )
