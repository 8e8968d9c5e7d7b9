import { Effect, Layer } from "effect"
import type { StoredInstance } from "../machine/instance.ts"
import type { WriteBatch } from "../machine/state.ts"
import { StoreError } from "../model/errors.ts"
import type { InstanceRow } from "../model/instance.ts"
import { isTerminal } from "../model/status.ts"
import type { TaskRow } from "../model/task.ts"
import { TaskStore, type StoredResult, type TaskStoreShape } from "../ports/task-store.ts"

interface StoredTasks {
  instance: InstanceRow
  /** Rows by seq: seq is dense from 0, so the array is in reduce's order. */
  bySeq: Array<TaskRow | undefined>
  byId: Map<string, TaskRow>
}

const notFound = (message: string) => new StoreError({ reason: "not-found", message })

/**
 * Tasks in memory, for tests, browsers without IndexedDB and single-process use. It keeps its own
 * copies of rows and applies a batch only after checking all of it, so a failed batch changes nothing.
 */
export const makeMemoryStore = (): TaskStoreShape & { readonly instances: Map<string, StoredTasks> } => {
  const instances = new Map<string, StoredTasks>()

  const check = (batch: WriteBatch): StoreError | undefined => {
    const stored = instances.get(batch.instance.id)
    const seen = new Set<string>()
    for (const row of batch.inserts) {
      if (stored?.byId.has(row.id) || seen.has(row.id)) {
        return new StoreError({ reason: "conflict", message: `task ${row.id} of ${batch.instance.id} exists already` })
      }
      seen.add(row.id)
    }
    for (const update of batch.updates) {
      if (!stored?.byId.has(update.id) && !seen.has(update.id)) {
        return notFound(`task ${update.id} of ${batch.instance.id} is not stored`)
      }
    }
    return undefined
  }

  const apply = (batch: WriteBatch): void => {
    const id = batch.instance.id
    if (batch.deleteInstance) {
      instances.delete(id)
      return
    }
    let stored = instances.get(id)
    if (stored === undefined) {
      stored = { instance: batch.instance, bySeq: [], byId: new Map() }
      instances.set(id, stored)
    }
    stored.instance = batch.instance
    for (const row of batch.inserts) {
      const copy = { ...row }
      stored.bySeq[row.seq] = copy
      stored.byId.set(row.id, copy)
    }
    for (const update of batch.updates) Object.assign(stored.byId.get(update.id) as TaskRow, update)
    if (batch.deleteRuns.length > 0) {
      const runs = new Set(batch.deleteRuns)
      for (const [taskId, row] of stored.byId) {
        if (!runs.has(row.run)) continue
        stored.byId.delete(taskId)
        stored.bySeq[row.seq] = undefined
      }
    }
  }

  return {
    instances,
    apply: (batch) =>
      Effect.suspend(() => {
        const error = check(batch)
        if (error !== undefined) return Effect.fail(error)
        apply(batch)
        return Effect.void
      }),
    readTasks: (instanceId, ids) =>
      Effect.sync(() => {
        const stored = instances.get(instanceId)
        const rows: TaskRow[] = []
        for (const id of ids) {
          const row = stored?.byId.get(id)
          if (row !== undefined) rows.push({ ...row })
        }
        return rows
      }),
    readResults: (instanceId, run, afterSeq, limit) =>
      Effect.sync(() => {
        const rows = instances.get(instanceId)?.bySeq ?? []
        const page: StoredResult[] = []
        for (let seq = Math.max(0, afterSeq + 1); seq < rows.length && page.length < limit; seq++) {
          const row = rows[seq]
          if (row === undefined || row.run !== run || !isTerminal(row.status)) continue
          page.push({
            id: row.id,
            seq: row.seq,
            name: row.name,
            status: row.status,
            result: row.result,
            resultCut: row.resultCut,
            lastError: row.lastError
          })
        }
        return page
      }),
    load: (instanceId) =>
      Effect.sync((): StoredInstance | undefined => {
        const stored = instances.get(instanceId)
        if (stored === undefined) return undefined
        const live: TaskRow[] = []
        const terminal = new Map<string, { name: string; worker: string | null; status: number; count: number }>()
        for (const row of stored.bySeq) {
          if (row === undefined) continue
          if (!isTerminal(row.status)) {
            live.push({ ...row })
            continue
          }
          const key = `${row.name}\u0000${row.worker ?? ""}\u0000${row.status}`
          const count = terminal.get(key)
          if (count === undefined) terminal.set(key, { name: row.name, worker: row.worker, status: row.status, count: 1 })
          else count.count++
        }
        return { instance: stored.instance, live, terminal: [...terminal.values()] }
      }),
    listInstances: () => Effect.sync(() => [...instances.keys()])
  }
}

export const MemoryStoreLayer = Layer.sync(TaskStore, makeMemoryStore)
