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

  /** Applies a batch in one pass; on the first bad row it undoes what it did, so a failed batch changes nothing. */
  const apply = (batch: WriteBatch): StoreError | undefined => {
    const id = batch.instance.id
    if (batch.deleteInstance) {
      instances.delete(id)
      return undefined
    }
    const existing = instances.get(id)
    const stored = existing ?? { instance: batch.instance, bySeq: [], byId: new Map<string, TaskRow>() }
    const { byId, bySeq } = stored
    let inserted = 0
    const undo = (error: StoreError) => {
      for (let i = 0; i < inserted; i++) {
        const row = batch.inserts[i] as TaskRow
        byId.delete(row.id)
        bySeq[row.seq] = undefined
      }
      return error
    }
    // Rows are adopted, not copied: the machine builds fresh row objects for every batch and never touches them again.
    for (const row of batch.inserts) {
      if (byId.has(row.id)) return undo(new StoreError({ reason: "conflict", message: `task ${row.id} of ${id} exists already` }))
      byId.set(row.id, row)
      bySeq[row.seq] = row
      inserted++
    }
    for (const update of batch.updates) {
      if (bySeq[update.seq]?.id !== update.id) return undo(notFound(`task ${update.id} (seq ${update.seq}) of ${id} is not stored`))
    }
    for (const update of batch.updates) {
      const row = bySeq[update.seq] as { -readonly [K in keyof TaskRow]: TaskRow[K] }
      row.status = update.status
      row.worker = update.worker
      row.attempt = update.attempt
      row.failures = update.failures
      row.redeliveries = update.redeliveries
      row.childCount = update.childCount
      row.dueAt = update.dueAt
      row.result = update.result
      row.resultCut = update.resultCut
      row.lastError = update.lastError
    }
    if (batch.deleteRuns.length > 0) {
      const runs = new Set(batch.deleteRuns)
      for (const [taskId, row] of byId) {
        if (!runs.has(row.run)) continue
        byId.delete(taskId)
        bySeq[row.seq] = undefined
      }
    }
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
