/**
 * Scenarios run both in Chromium (real IndexedDB, real Web Workers) and in Node (fake-indexeddb,
 * workers on MessageChannels running the same worker script code): only `createWorker` differs.
 */
import { Effect, Exit, Option, Scope } from "effect"
import { expect } from "vitest"
import type { JobConfigOverrides, Outcome, Progress } from "@taskfold/core"
import type { Tracker } from "@taskfold/core/adapter"
import { expectedWordCount, wordCount, type WordCountParams, type WordCountResult } from "../../demo/wordcount.ts"
import { openIdbStore, startBrowserCluster, type BrowserCluster, type IdbStore } from "../../src/index.ts"
import type { WorkerLike } from "@taskfold/core/wire"
import { byteSums, expectedByteSums } from "./jobs.ts"

export interface ScenarioOptions {
  readonly createWorker: (index: number) => WorkerLike
  readonly workers: number
  /** A database name no other test uses. */
  readonly database: string
  readonly params: WordCountParams
}

/** Short timers, so a lost worker or an unacknowledged batch is noticed within a test's time. */
export const HEARTBEAT = 200
export const testConfig: JobConfigOverrides = { workerTimeout: 1_500, ackTimeout: 1_000, progressInterval: 100 }

const within = <A>(effect: Effect.Effect<A>, ms: number, what: string): Effect.Effect<A> =>
  effect.pipe(
    Effect.timeoutOption(ms),
    Effect.flatMap((found) =>
      Option.isSome(found)
        ? Effect.succeed(found.value)
        : Effect.die(new Error(`timed out after ${ms} ms waiting for ${what}`))
    )
  )

const waitUntil = (condition: Effect.Effect<boolean>, what: string, ms = 30_000): Effect.Effect<void> =>
  within(
    Effect.gen(function* () {
      while (!(yield* condition)) yield* Effect.sleep(20)
    }),
    ms,
    what
  )

const open = (database: string) => Effect.promise(() => openIdbStore({ name: database }))

const cluster = (
  options: Pick<ScenarioOptions, "createWorker" | "workers">,
  store: IdbStore,
  onOutcome?: (outcome: Outcome) => void
) =>
  startBrowserCluster({
    store,
    jobs: [wordCount, byteSums],
    createWorker: options.createWorker,
    workers: options.workers,
    heartbeatInterval: HEARTBEAT,
    ...(onOutcome ? { onOutcome: (_id: string, outcome: Outcome) => onOutcome(outcome) } : {})
  })

/** Every terminal task id of run 0 the store holds, read the way reduce reads them. */
export const terminalIds = (store: IdbStore, instanceId: string): Effect.Effect<Set<string>> =>
  Effect.gen(function* () {
    const ids = new Set<string>()
    for (let after = -1; ; ) {
      const page = yield* Effect.orDie(store.readResults(instanceId, 0, after, 500))
      for (const row of page) ids.add(row.id)
      if (page.length < 500) return ids
      after = page[page.length - 1]!.seq
    }
  })

export interface Finished {
  readonly instanceId: string
  readonly outcome: Outcome
  readonly result: WordCountResult
  readonly progress: Progress
  /** Instances left in the store after the owner acknowledged the outcome. */
  readonly storedAfter: ReadonlyArray<string>
}

const finish = (tracker: Tracker, store: IdbStore, acknowledged: () => boolean): Effect.Effect<Finished> =>
  Effect.gen(function* () {
    const outcome = yield* within(tracker.outcome, 60_000, "the outcome")
    const progress = yield* tracker.progress
    yield* within(tracker.released, 10_000, "the tracker to let go of the instance")
    expect(acknowledged()).toBe(true)
    const storedAfter = yield* Effect.orDie(store.listInstances())
    return {
      instanceId: tracker.instanceId,
      outcome,
      result: JSON.parse(outcome.result) as WordCountResult,
      progress,
      storedAfter
    }
  })

/** Runs a word count across the workers to its outcome. */
export const runWordCount = (options: ScenarioOptions): Promise<Finished> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const store = yield* open(options.database)
        yield* Effect.addFinalizer(() => Effect.sync(() => store.close()))
        let acknowledged = false
        const running = yield* cluster(options, store, () => {
          acknowledged = true
        })
        const tracker = yield* running.start(wordCount, { params: options.params, config: testConfig })
        return yield* finish(tracker, store, () => acknowledged)
      })
    )
  )

/**
 * A Web Worker dies mid-run without a word (terminated, as a crashed worker would be): its heartbeats
 * stop, the tracker loses it and runs its tasks elsewhere (R-WORK-2).
 */
export const workerDiesMidRun = (
  options: ScenarioOptions & { readonly killAfter: number }
): Promise<Finished & { readonly killed: string }> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const store = yield* open(options.database)
        yield* Effect.addFinalizer(() => Effect.sync(() => store.close()))
        let acknowledged = false
        const running = yield* cluster(options, store, () => {
          acknowledged = true
        })
        const tracker = yield* running.start(wordCount, { params: options.params, config: testConfig })
        yield* waitUntil(
          Effect.map(tracker.progress, (progress) => (progress.byName["count"]?.succeeded ?? 0) >= options.killAfter),
          `${options.killAfter} chunks counted`
        )
        const victim = running.workers[0]!
        victim.worker.terminate()
        const finished = yield* finish(tracker, store, () => acknowledged)
        return { ...finished, killed: victim.id }
      })
    )
  )

/** Range tasks map byte-bodied blocks from inside the workers: map calls and bodies cross from a worker to the page. */
export const runByteSums = (options: Omit<ScenarioOptions, "params">): Promise<void> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const store = yield* open(options.database)
        yield* Effect.addFinalizer(() => Effect.sync(() => store.close()))
        const params = { ranges: 6, blocks: 40, size: 3_000 }
        const running = yield* cluster(options, store)
        const tracker = yield* running.start(byteSums, { params, config: testConfig })
        const outcome = yield* within(tracker.outcome, 60_000, "the outcome")
        expect(outcome.ok).toBe(true)
        expect(JSON.parse(outcome.result)).toEqual(expectedByteSums(params))
        const progress = yield* tracker.progress
        expect(progress.byName["range"]).toMatchObject({ total: params.ranges, succeeded: params.ranges })
        expect(progress.byName["block"]).toMatchObject({
          total: params.ranges * params.blocks,
          succeeded: params.ranges * params.blocks
        })
        yield* within(tracker.released, 10_000, "the release")
      })
    )
  )

export interface Resumed extends Finished {
  /** Terminal task ids in the store when the first session went away. */
  readonly terminalBefore: ReadonlySet<string>
  /** Chunk tasks started in the second session, as their processors announced them. */
  readonly startedAfter: ReadonlyArray<{ readonly taskId: string; readonly attempt: number }>
  readonly resumedIds: ReadonlyArray<string>
}

/**
 * Session 1 starts the word count and goes away mid-run all at once, as a page reload does: its
 * tracker, its own worker and its Web Workers stop, its IndexedDB connection closes. Session 2 opens
 * the same database and resumes whatever is stored there, and the instance runs to its end.
 */
export const reloadMidRun = (options: ScenarioOptions & { readonly reloadAfter: number }): Promise<Resumed> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const trace = options.params.trace
      if (trace === undefined) throw new Error("reloadMidRun needs params.trace")
      let session = 1
      const startedAfter: Array<{ taskId: string; attempt: number }> = []
      const channel = new BroadcastChannel(trace)
      channel.onmessage = (event: MessageEvent<{ taskId: string; attempt: number }>) => {
        if (session === 2) startedAfter.push(event.data)
      }

      // Session 1.
      const first = yield* Scope.make()
      const store1 = yield* open(options.database)
      const running: BrowserCluster = yield* cluster(options, store1).pipe(Scope.provide(first))
      const tracker1 = yield* running.start(wordCount, { params: options.params, config: testConfig })
      const instanceId = tracker1.instanceId
      yield* waitUntil(
        Effect.map(tracker1.progress, (progress) => (progress.byName["count"]?.succeeded ?? 0) >= options.reloadAfter),
        `${options.reloadAfter} chunks counted`
      )
      // The "reload": everything of session 1 stops at once.
      yield* Scope.close(first, Exit.void)
      store1.close()
      // Announcements still on their way from session 1's workers arrive meanwhile.
      yield* Effect.sleep(150)
      session = 2

      // Session 2: a fresh connection to the same database.
      const store2 = yield* open(options.database)
      const terminalBefore = yield* terminalIds(store2, instanceId)
      const second = yield* Scope.make()
      let acknowledged = false
      const resumedCluster = yield* cluster(options, store2, () => {
        acknowledged = true
      }).pipe(Scope.provide(second))
      const resumed = yield* Effect.orDie(resumedCluster.resumeAll())
      const tracker2 = resumed[0]
      if (tracker2 === undefined) throw new Error("nothing was resumed")
      const finished = yield* finish(tracker2, store2, () => acknowledged)
      yield* Scope.close(second, Exit.void)
      store2.close()
      channel.close()
      return { ...finished, terminalBefore, startedAfter, resumedIds: resumed.map((tracker) => tracker.instanceId) }
    })
  )

/** The checks of R-REC-1 and R-REC-2 on a resumed run. */
export const expectExactlyOnce = (run: Resumed, params: WordCountParams): void => {
  const expected = expectedWordCount(params)
  expect(run.resumedIds).toEqual([run.instanceId])
  expect(run.outcome.ok).toBe(true)
  // Reduce saw every chunk exactly once: one more or one less and the totals would differ.
  expect({ chunks: run.result.chunks, words: run.result.words, distinct: run.result.distinct }).toEqual(expected)
  expect(run.progress.byName["count"]).toMatchObject({
    total: expected.chunks,
    succeeded: expected.chunks,
    failed: 0,
    waiting: 0,
    running: 0
  })
  expect(run.progress.byName["ROOT"]).toMatchObject({ total: 1, succeeded: 1 })
  expect(run.progress.byName["FINAL"]).toMatchObject({ total: 1, succeeded: 1 })
  // The reload came mid-run: part of the work was done, part was not.
  expect(run.terminalBefore.size).toBeGreaterThan(1)
  expect(run.terminalBefore.size).toBeLessThan(expected.chunks + 1)
  // No task that was terminal in the store before the reload ran again.
  const rerun = run.startedAfter.filter((start) => run.terminalBefore.has(start.taskId))
  expect(rerun).toEqual([])
  // The rest did run after the reload.
  expect(run.startedAfter.length).toBeGreaterThan(0)
  // Released: the owner has the outcome and the instance's rows are gone.
  expect(run.storedAfter).toEqual([])
}

export const expectWordCount = (run: Finished, params: WordCountParams): void => {
  const expected = expectedWordCount(params)
  expect(run.outcome.ok).toBe(true)
  expect({ chunks: run.result.chunks, words: run.result.words, distinct: run.result.distinct }).toEqual(expected)
  expect(run.progress.byName["count"]).toMatchObject({ total: expected.chunks, succeeded: expected.chunks, failed: 0 })
  expect(run.storedAfter).toEqual([])
}
