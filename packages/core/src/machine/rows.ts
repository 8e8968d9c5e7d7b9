import { TaskKind, TaskStatus } from "../model/status.ts"
import type { TaskRow } from "../model/task.ts"
import { encodeTaskError } from "../model/task-error.ts"
import type { ChildBlock } from "./blocks.ts"
import type { LiveTask } from "./state.ts"

/** What the store keeps of a task: its row as it stands at the end of the step (written whole when inserted). */
export const toRow = (task: LiveTask): TaskRow => ({
  id: task.id,
  seq: task.seq,
  run: task.run.n,
  name: task.name,
  kind: task.kind,
  body: task.body,
  status: task.status,
  worker: task.worker?.id ?? null,
  attempt: task.attempt,
  failures: task.failures,
  redeliveries: task.redeliveries,
  childCount: task.childCount,
  dueAt: task.dueAt,
  result: task.result,
  resultCut: false,
  lastError: task.lastError === null ? null : encodeTaskError(task.lastError)
})

/** The rows of a block's children, in seq order: the ones made live as they stand, the others Waiting. */
export const blockRows = (block: ChildBlock, rows: TaskRow[]): void => {
  const run = block.run.n
  const name = block.counter.name
  for (let index = 0; index < block.size; index++) {
    const task = block.taken?.get(index)
    rows.push(
      task !== undefined
        ? toRow(task)
        : {
            id: block.idOf(index),
            seq: block.firstSeq + index,
            run,
            name,
            kind: TaskKind.Sub,
            body: block.bodyOf(index),
            status: TaskStatus.Waiting,
            worker: null,
            attempt: 0,
            failures: 0,
            redeliveries: 0,
            childCount: 0,
            dueAt: null,
            result: null,
            resultCut: false,
            lastError: null
          }
    )
  }
}
