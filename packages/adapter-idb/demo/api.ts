import type { Outcome, Progress } from "@taskfold/core"
import type { WordCountParams } from "./wordcount.ts"

/**
 * A finished run, as the page keeps it in localStorage
 * (IndexedDB lets go of an instance once its outcome is taken).
 */
export interface FinishedRun {
  readonly instanceId: string
  readonly params: WordCountParams | null
  readonly startedAt: number | null
  readonly outcome: Outcome
  /** Page loads the instance ran in: 1, or more if it was resumed after reloads. */
  readonly sessions: number
}

/** What the demo page exposes as `window.taskfoldDemo`, for the console and for tests driving the page. */
export interface DemoApi {
  /** True once stored instances were resumed and the page takes new runs. */
  ready: boolean
  /** Why the page could not start, if it could not. */
  error: string | null
  readonly workers: ReadonlyArray<string>
  /** Instances this page load resumed from IndexedDB (R-REC-1). */
  readonly resumed: string[]
  readonly progress: Record<string, Progress>
  readonly finished: () => ReadonlyArray<FinishedRun>
  /** Starts a word count; resolves with its instance id. */
  readonly start: (params: WordCountParams) => Promise<string>
  /** Terminal task ids of an instance as IndexedDB holds them now. */
  readonly terminalIds: (instanceId: string) => Promise<string[]>
  /** With `?trace=NAME` in the address: the chunk tasks started in this page load, in order. */
  readonly trace: Array<{ readonly taskId: string; readonly attempt: number }>
}

declare global {
  interface Window {
    /** Set by the demo page. */
    taskfoldDemo?: DemoApi
  }
}
