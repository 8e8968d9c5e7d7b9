import type { StoredResult, TaskRow } from "@taskfold/core/adapter"

/** The columns read back into a TaskRow, renamed to its fields. */
export const TASK_SELECT = `id, seq, run, name, kind, body, status, worker, attempt, failures, redeliveries,
  child_count AS childCount, due_at AS dueAt, result, result_cut AS resultCut, last_error AS lastError`

/** A row as SELECT ${TASK_SELECT} returns it. */
interface TaskColumns {
  readonly id: string
  readonly seq: number
  readonly run: number
  readonly name: string
  readonly kind: TaskRow["kind"]
  readonly body: TaskRow["body"]
  readonly status: TaskRow["status"]
  readonly worker: string | null
  readonly attempt: number
  readonly failures: number
  readonly redeliveries: number
  readonly childCount: number
  readonly dueAt: number | null
  readonly result: string | null
  readonly resultCut: number
  readonly lastError: string | null
}

/** A plain TaskRow from a result row (node:sqlite gives null-prototype objects and 0/1 for booleans). */
export const toTaskRow = (columns: unknown): TaskRow => {
  const c = columns as TaskColumns
  return {
    id: c.id,
    seq: c.seq,
    run: c.run,
    name: c.name,
    kind: c.kind,
    body: c.body,
    status: c.status,
    worker: c.worker,
    attempt: c.attempt,
    failures: c.failures,
    redeliveries: c.redeliveries,
    childCount: c.childCount,
    dueAt: c.dueAt,
    result: c.result,
    resultCut: c.resultCut !== 0,
    lastError: c.lastError
  }
}

export const toStoredResult = (columns: unknown): StoredResult => {
  const c = columns as Pick<TaskColumns, "id" | "seq" | "name" | "status" | "result" | "resultCut" | "lastError">
  return {
    id: c.id,
    seq: c.seq,
    name: c.name,
    status: c.status,
    result: c.result,
    resultCut: c.resultCut !== 0,
    lastError: c.lastError
  }
}
