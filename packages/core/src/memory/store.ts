import { Effect, Layer } from "effect"
import type { StoredInstance } from "../model/store.ts"
import type { WriteBatch } from "../model/store.ts"
import { StoreError } from "../model/errors.ts"
import type { InstanceRow } from "../model/instance.ts"
import { isTerminal } from "../model/status.ts"
import type { TaskRow } from "../model/task.ts"
import { TaskStore, type StoredResult, type TaskStoreShape } from "../ports/task-store.ts"
import { TaskTable } from "./table.ts"

/** One stored instance: its row and its tasks. */
export class StoredTasks {
  instance: InstanceRow
  readonly tasks = new TaskTable()
  constructor(instance: InstanceRow) {
    this.instance = instance
  }

  /** Copies of the rows by seq (holes where none is stored), for inspection. */
  get bySeq(): Array<TaskRow | undefined> {
    const rows: Array<TaskRow | undefined> = []
    for (let seq = 0; seq < this.tasks.length; seq++) rows.push(this.tasks.has(seq) ? this.tasks.rowAt(seq) : undefined)
    return rows
  }

  /** Copies of the rows by id, in seq order, for inspection. */
  get byId(): Map<string, TaskRow> {
    const rows = new Map<string, TaskRow>()
    for (let seq = 0; seq < this.tasks.length; seq++)
      if (this.tasks.has(seq)) rows.set(this.tasks.idAt(seq) as string, this.tasks.rowAt(seq))
    return rows
  }
}

const notFound = (message: string) => new StoreError({ reason: "not-found", message })

/**
 * Tasks in memory, for tests, browsers without IndexedDB and single-process use. It copies rows into
 * its tables and applies a batch only after checking all of it, so a failed batch changes nothing.
 * Rows are keyed by seq (dense per instance): an insert at a taken seq is a conflict.
 */
export const makeMemoryStore = (): TaskStoreShape & { readonly instances: Map<string, StoredTasks> } => {
  const instances = new Map<string, StoredTasks>()

  /** Applies a batch in one pass; on the first bad row it undoes what it did, so a failed batch changes nothing. */
  const apply = (batch: WriteBatch): StoreError | undefined => {
    const id = batch.instance.id
    if (batch.deleteInstance) {
      instances.delete(id)
      return undefined
    }
    const existing = instances.get(id)
    const stored = existing ?? new StoredTasks(batch.instance)
    const table = stored.tasks
    const inserts = batch.inserts
    const undo = (inserted: number, error: StoreError) => {
      for (let i = 0; i < inserted; i++) table.remove((inserts[i] as TaskRow).seq)
      return error
    }
    for (let i = 0; i < inserts.length; i++) {
      const row = inserts[i] as TaskRow
      if (table.has(row.seq))
        return undo(i, new StoreError({ reason: "conflict", message: `task ${row.id} of ${id} exists already` }))
      table.insert(row)
    }
    for (const update of batch.updates) {
      if (table.idAt(update.seq) !== update.id) {
        return undo(inserts.length, notFound(`task ${update.id} (seq ${update.seq}) of ${id} is not stored`))
      }
    }
    for (const update of batch.updates) table.update(update)
    if (batch.deleteRuns.length > 0) table.removeRuns(new Set(batch.deleteRuns))
    stored.instance = batch.instance
    if (existing === undefined) instances.set(id, stored)
    return undefined
  }

  return {
    instances,
    apply: (batch) =>
      Effect.suspend(() => {
        const error = apply(batch)
        return error === undefined ? Effect.void : Effect.fail(error)
      }),
    readTasks: (instanceId, ids) =>
      Effect.sync(() => {
        const table = instances.get(instanceId)?.tasks
        const rows: TaskRow[] = []
        if (table === undefined) return rows
        for (const id of ids) {
          const seq = table.seqOf(id)
          if (seq !== undefined) rows.push(table.rowAt(seq))
        }
        return rows
      }),
    readResults: (instanceId, run, afterSeq, limit) =>
      Effect.sync(() => {
        const table = instances.get(instanceId)?.tasks
        const page: StoredResult[] = []
        if (table === undefined) return page
        for (let seq = Math.max(0, afterSeq + 1); seq < table.length && page.length < limit; seq++) {
          if (table.has(seq) && table.runAt(seq) === run && isTerminal(table.statusAt(seq)))
            page.push(table.resultAt(seq))
        }
        return page
      }),
    load: (instanceId) =>
      Effect.sync((): StoredInstance | undefined => {
        const stored = instances.get(instanceId)
        if (stored === undefined) return undefined
        const table = stored.tasks
        const live: TaskRow[] = []
        const terminal = new Map<string, { name: string; worker: string | null; status: number; count: number }>()
        for (let seq = 0; seq < table.length; seq++) {
          if (!table.has(seq)) continue
          const status = table.statusAt(seq)
          if (!isTerminal(status)) {
            live.push(table.rowAt(seq))
            continue
          }
          const name = table.nameAt(seq)
          const worker = table.workerAt(seq)
          const key = `${name}\u0000${worker ?? ""}\u0000${status}`
          const count = terminal.get(key)
          if (count === undefined) terminal.set(key, { name, worker, status, count: 1 })
          else count.count++
        }
        return { instance: stored.instance, live, terminal: [...terminal.values()] }
      }),
    listInstances: () => Effect.sync(() => [...instances.keys()])
  }
}

export const MemoryStoreLayer = Layer.sync(TaskStore, makeMemoryStore)
