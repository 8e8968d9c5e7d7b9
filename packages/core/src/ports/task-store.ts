import { Context, type Effect } from "effect"
import type { StoredInstance, StoredResult, WriteBatch } from "../model/store.ts"
import type { StoreError } from "../model/errors.ts"
import type { TaskRow } from "../model/task.ts"

/**
 * Where an instance's tasks live. Every call is one short transaction with no foreign await inside
 * it, so it fits node:sqlite (synchronous), Durable Object SQL (transactionSync, 100 bound parameters
 * per statement) and IndexedDB (a transaction ends when the event loop goes idle).
 */
export interface TaskStoreShape {
  /** Applies one write batch atomically: all of it or, failing, none of it. */
  readonly apply: (batch: WriteBatch) => Effect.Effect<void, StoreError>
  /** Tasks by id, any status; ids not stored are left out. */
  readonly readTasks: (
    instanceId: string,
    ids: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<TaskRow>, StoreError>
  /** A page of the terminal tasks of run `run` with seq > afterSeq, in seq order (what reduce reads). */
  readonly readResults: (
    instanceId: string,
    run: number,
    afterSeq: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<StoredResult>, StoreError>
  /** Everything needed to resume an instance, or undefined if none is stored (R-REC-1). */
  readonly load: (instanceId: string) => Effect.Effect<StoredInstance | undefined, StoreError>
  /** Ids of the stored instances: the ones to resume after a restart. */
  readonly listInstances: () => Effect.Effect<ReadonlyArray<string>, StoreError>
}

export type { StoredResult }

export class TaskStore extends Context.Service<TaskStore, TaskStoreShape>()("taskfold/TaskStore") {}
