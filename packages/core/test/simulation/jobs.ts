/**
 * The jobs of the system simulation: a tree of tasks drawn by fast-check, the processors that run it (each
 * task looks itself up by its id, which its body carries), and the oracle that says what a true outcome is.
 *
 * Task ids are predictable (R-MAP-2): child k (1-based, counted over all map calls of its parent, in call
 * order) of task P is "P.k". So a node's id is its path, the body of each mapped item is the id it must get,
 * and a processor that finds itself under another id reports an anomaly.
 */
import { Data, Effect } from "effect"
import fc from "fast-check"
import { defineJob, type Job, type TaskContext, type TaskResult, type TaskView } from "../../src/index.ts"

export type ErrorKind =
  | "error"
  | "string"
  | "bigint"
  | "circular"
  | "undefined"
  | "tagged"
  | "effect-fail"
  | "effect-die"
export type Style = "sync" | "async" | "effect"
export type ResultKind = "plain" | "object" | "big" | "bigint"

export interface Behaviour {
  /** Attempts below this fail (attempt numbers start at 0). */
  readonly failFirst: number
  /** Every attempt fails. */
  readonly alwaysFail: boolean
  /** Where a failing attempt fails: before its map calls, after the first one, or after all of them. */
  readonly failPoint: "before" | "between" | "after"
  readonly errorKind: ErrorKind
  readonly result: ResultKind
  /** Simulated milliseconds the processor is busy before it does anything (0: not busy). */
  readonly busyMs: number
  readonly style: Style
  /** Issues all its map calls at once instead of one after the other. */
  readonly parallelMaps: boolean
}

export interface MapCall {
  readonly name: string
  readonly children: ReadonlyArray<TreeNode>
}

export interface TreeNode {
  readonly behaviour: Behaviour
  readonly calls: ReadonlyArray<MapCall>
}

export type Kind = "map" | "mapReduce"

export interface JobPlan {
  readonly kind: Kind
  readonly root: TreeNode
  /** The final task's behaviour (mapReduce); its result kind is not used. */
  readonly final: Behaviour
}

/** A node of the tree with its id, name and parent. */
export interface PlacedNode {
  readonly id: string
  readonly name: string
  readonly node: TreeNode
}

export const ROOT_ID = "0"
export const FINAL_ID = "0.F"

/** Every task the tree defines, root first, by id. */
export const placeTree = (root: TreeNode): Map<string, PlacedNode> => {
  const placed = new Map<string, PlacedNode>()
  const visit = (id: string, name: string, node: TreeNode) => {
    placed.set(id, { id, name, node })
    let k = 0
    for (const call of node.calls) for (const child of call.children) visit(`${id}.${++k}`, call.name, child)
  }
  visit(ROOT_ID, "ROOT", root)
  return placed
}

/** The children a node maps, with their ids, in call order. */
const childIds = (id: string, node: TreeNode): string[][] => {
  let k = 0
  return node.calls.map((call) => call.children.map(() => `${id}.${++k}`))
}

// ---------------------------------------------------------------------------------------------------------
// Arbitraries

const benign: Behaviour = {
  failFirst: 0,
  alwaysFail: false,
  failPoint: "before",
  errorKind: "error",
  result: "plain",
  busyMs: 0,
  style: "sync",
  parallelMaps: false
}

export interface TreeLimits {
  readonly maxDepth: number
  readonly maxTasks: number
  /** Chance (0..1) that a task is one that must fail (always fails, result too large or not JSON). */
  readonly mustFail: number
}

export const behaviourArb = (limits: TreeLimits, kind: Kind): fc.Arbitrary<Behaviour> =>
  fc
    .record({
      failFirst: fc.oneof(
        { weight: 6, arbitrary: fc.constant(0) },
        { weight: 3, arbitrary: fc.constant(1) },
        { weight: 1, arbitrary: fc.constant(2) }
      ),
      mustFail: fc.integer({ min: 0, max: 999 }),
      mustFailHow: fc.constantFrom<"always" | "big" | "bigint">("always", "big", "bigint"),
      failPoint: fc.constantFrom<Behaviour["failPoint"]>("before", "between", "after"),
      errorKind: fc.constantFrom<ErrorKind>(
        "error",
        "string",
        "bigint",
        "circular",
        "undefined",
        "tagged",
        "effect-fail",
        "effect-die"
      ),
      bigInMap: fc.boolean(),
      object: fc.boolean(),
      // Busy for longer than ackTimeout (15 s by default), in simulated time.
      busy: fc.oneof(
        { weight: 19, arbitrary: fc.constant(0) },
        { weight: 1, arbitrary: fc.integer({ min: 16_000, max: 40_000 }) }
      ),
      style: fc.constantFrom<Style>("sync", "async", "effect"),
      parallelMaps: fc.boolean()
    })
    .map((drawn): Behaviour => {
      const must = drawn.mustFail < limits.mustFail * 1_000
      // In a map job a large result is fine (no sub-task result is kept, R-RETRY-3): it is drawn there at times.
      const result: ResultKind = must
        ? drawn.mustFailHow === "always"
          ? "plain"
          : drawn.mustFailHow === "big"
            ? kind === "mapReduce"
              ? "big"
              : "bigint"
            : "bigint"
        : kind === "map" && drawn.bigInMap && drawn.object
          ? "big"
          : drawn.object
            ? "object"
            : "plain"
      return {
        failFirst: drawn.failFirst,
        alwaysFail: must && drawn.mustFailHow === "always",
        failPoint: drawn.failPoint,
        errorKind: drawn.errorKind,
        result,
        busyMs: drawn.busy,
        style: drawn.style,
        parallelMaps: drawn.parallelMaps
      }
    })

const names = ["a", "b", "c", "sub", "leaf"] as const

/** A tree of bounded depth; breadth shrinks with depth; trimmed breadth-first to maxTasks tasks. */
export const treeArb = (limits: TreeLimits, kind: Kind): fc.Arbitrary<TreeNode> => {
  const behaviour = behaviourArb(limits, kind)
  const node = (depth: number): fc.Arbitrary<TreeNode> =>
    fc.record({
      behaviour,
      calls:
        depth >= limits.maxDepth
          ? fc.constant([] as MapCall[])
          : fc.array(
              fc.record({
                name: fc.constantFrom(...names),
                children: fc.array(
                  fc.constant(null).chain(() => node(depth + 1)),
                  { maxLength: depth === 0 ? 5 : depth === 1 ? 3 : 2 }
                )
              }),
              { maxLength: depth === 0 ? 3 : 2 }
            )
    })
  return node(0).map((root) => trim(root, limits.maxTasks))
}

/** Keeps the first `max` tasks in breadth-first order (the root always). */
const trim = (root: TreeNode, max: number): TreeNode => {
  let budget = max - 1
  const keep = new Set<TreeNode>([root])
  const queue: TreeNode[] = [root]
  while (queue.length > 0) {
    const node = queue.shift() as TreeNode
    for (const call of node.calls) {
      for (const child of call.children) {
        if (budget <= 0) continue
        budget--
        keep.add(child)
        queue.push(child)
      }
    }
  }
  const rebuild = (node: TreeNode): TreeNode => ({
    behaviour: node.behaviour,
    calls: node.calls.map((call) => ({
      name: call.name,
      children: call.children.filter((child) => keep.has(child)).map(rebuild)
    }))
  })
  return rebuild(root)
}

export const jobPlanArb = (limits: TreeLimits): fc.Arbitrary<JobPlan> =>
  fc.constantFrom<Kind>("mapReduce", "map").chain((kind) =>
    fc.record({
      kind: fc.constant(kind),
      root: treeArb(limits, kind),
      final: behaviourArb({ ...limits, mustFail: limits.mustFail / 2 }, kind).map((b) => ({
        ...b,
        result: "plain" as const
      }))
    })
  )

export const benignBehaviour = benign

// ---------------------------------------------------------------------------------------------------------
// The oracle

/** Why a task of the plan cannot succeed whatever happens, or undefined. */
export const mustFailReason = (plan: JobPlan, node: TreeNode): string | undefined => {
  const b = node.behaviour
  if (b.alwaysFail) return "always fails"
  if (b.result === "bigint") return "result is not JSON"
  if (b.result === "big" && plan.kind === "mapReduce") return "result too large"
  return undefined
}

/** Tasks of the tree that cannot succeed (only the ones that are certainly created: their ancestors map first). */
export const mustFailTasks = (plan: JobPlan): Array<{ id: string; why: string }> => {
  const found: Array<{ id: string; why: string }> = []
  const visit = (id: string, node: TreeNode) => {
    const why = mustFailReason(plan, node)
    if (why !== undefined) {
      found.push({ id, why })
      return
    }
    const ids = childIds(id, node)
    node.calls.forEach((call, i) => {
      call.children.forEach((child, j) => {
        visit((ids[i] as string[])[j] as string, child)
      })
    })
  }
  visit(ROOT_ID, plan.root)
  if (plan.kind === "mapReduce" && plan.final.alwaysFail) found.push({ id: FINAL_ID, why: "final always fails" })
  return found
}

/** The result a task returns, as JSON-able data (or not, for "bigint"). */
export const resultFor = (id: string, kind: ResultKind, maxResultBytes: number): unknown => {
  switch (kind) {
    case "plain":
      return `v:${id}`
    case "object":
      return { id, depth: id.split(".").length, tags: [id.length, "x"] }
    case "big":
      return "L".repeat(maxResultBytes + 16) + id
    case "bigint":
      return { id, n: 10n }
  }
}

/** FNV-1a of a text, as 8 hex digits. */
const fnv = (text: string): string => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return (hash >>> 0).toString(16).padStart(8, "0")
}

export const entryLine = (taskId: string, name: string, ok: boolean, result: unknown): string =>
  `${taskId}|${name}|${ok}|${JSON.stringify(result)}`

/** What reduce returns for what it saw: the count and a hash of the sorted lines (duplicates included). */
export const digest = (lines: ReadonlyArray<string>): string => `${lines.length}:${fnv([...lines].sort().join("\n"))}`

/** The lines reduce must see when every task succeeded. */
export const expectedLines = (plan: JobPlan, maxResultBytes: number): string[] =>
  [...placeTree(plan.root).values()].map((placed) =>
    entryLine(placed.id, placed.name, true, resultFor(placed.id, placed.node.behaviour.result, maxResultBytes))
  )

// ---------------------------------------------------------------------------------------------------------
// The processors

class SimFailure extends Data.TaggedError("SimFailure")<{ readonly id: string; readonly attempt: number }> {}

/** What the processors write down while they run, for the checks and the failure report. */
export interface JobLog {
  /** Things that must never happen (a task under the wrong id, reduce seeing a task twice, ...). */
  readonly anomalies: string[]
  /** Every start of a processor: id@attempt. */
  readonly starts: string[]
  /** What each run of reduce saw, in stream order. */
  readonly reduces: Array<{ readonly attempt: number; readonly lines: string[]; readonly failed: boolean }>
}

export const newJobLog = (): JobLog => ({ anomalies: [], starts: [], reduces: [] })

const thrown = (kind: ErrorKind, id: string, attempt: number): unknown => {
  switch (kind) {
    case "error":
    case "effect-die":
      return new Error(`boom in ${id} attempt ${attempt}`)
    case "string":
      return `boom in ${id}`
    case "bigint":
      return BigInt(attempt) * 1_000_000_007n
    case "circular": {
      const value: Record<string, unknown> = { id, attempt }
      value["self"] = value
      value["list"] = [value, { back: value }]
      return value
    }
    case "undefined":
      return undefined
    case "tagged":
    case "effect-fail":
      return new SimFailure({ id, attempt })
  }
}

export interface SimJobOptions {
  readonly plan: JobPlan
  readonly maxResultBytes: number
  readonly log: JobLog
  /** Waits `ms` of simulated time (the run's TestClock). */
  readonly sleep: (ms: number) => Promise<void>
  /** The same as an Effect, with the run's clock provided. */
  readonly sleepEffect: (ms: number) => Effect.Effect<void>
}

export const JOB_NAME = "sim"

/** The job that runs a plan. One job object serves every worker. */
export const simJob = (options: SimJobOptions): Job => {
  const { plan, log, maxResultBytes } = options
  const placed = placeTree(plan.root)

  const mapAll = async (
    id: string,
    node: TreeNode,
    context: TaskContext,
    failBetween: () => unknown
  ): Promise<void> => {
    const ids = childIds(id, node)
    const calls = node.calls
    if (calls.length === 0) return
    const one = (i: number) => context.map(ids[i] as string[], (calls[i] as MapCall).name)
    if (node.behaviour.parallelMaps) {
      const all = calls.map((_, i) => one(i))
      // Wait for every call even if one fails, so no call is in flight when the attempt ends.
      const settled = await Promise.allSettled(all)
      const failed = settled.find((s) => s.status === "rejected")
      failBetween()
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
      return
    }
    for (let i = 0; i < calls.length; i++) {
      await one(i)
      if (i === 0) failBetween()
    }
  }

  const process = (task: TaskView, context: TaskContext): unknown => {
    const id = task.isRoot ? ROOT_ID : String(task.body)
    log.starts.push(`${task.id}@${task.attempt}`)
    if (task.id !== id) log.anomalies.push(`task ${task.id} (${task.name}) carries the body of ${id}`)
    const found = placed.get(id)
    if (found === undefined) {
      log.anomalies.push(`task ${task.id} is not part of the plan`)
      return "unplanned"
    }
    if (found.name !== task.name) log.anomalies.push(`task ${task.id} is named ${task.name}, planned ${found.name}`)
    const b = found.node.behaviour
    const failing = b.alwaysFail || task.attempt < b.failFirst
    const failure = () => thrown(b.errorKind, id, task.attempt)
    const result = () => resultFor(id, b.result, maxResultBytes)
    const hasMaps = found.node.calls.length > 0

    if (b.style === "sync" && !hasMaps && b.busyMs === 0) {
      if (failing) throw failure()
      return result()
    }
    if (b.style === "effect") {
      return Effect.gen(function* () {
        if (b.busyMs > 0) yield* options.sleepEffect(b.busyMs)
        const fail = (): Effect.Effect<never, unknown> =>
          b.errorKind === "effect-die" ? Effect.die(failure()) : Effect.fail(failure())
        if (failing && b.failPoint === "before") return yield* fail()
        yield* Effect.tryPromise({
          try: () =>
            mapAll(id, found.node, context, () => {
              if (failing && b.failPoint === "between") throw failure()
            }),
          catch: (error) => error
        })
        if (failing) return yield* fail()
        return result()
      })
    }
    return (async () => {
      if (b.busyMs > 0) await options.sleep(b.busyMs)
      if (failing && b.failPoint === "before") throw failure()
      await mapAll(id, found.node, context, () => {
        if (failing && b.failPoint === "between") throw failure()
      })
      if (failing) throw failure()
      return result()
    })()
  }

  const reduce = async (results: AsyncIterable<TaskResult>, context: TaskContext): Promise<unknown> => {
    // The final task's context is the task itself (the worker hands one object as both).
    const attempt = (context as unknown as TaskView).attempt
    const b = plan.final
    if (b.busyMs > 0) await options.sleep(b.busyMs)
    const lines: string[] = []
    const record = { attempt, lines, failed: false }
    log.reduces.push(record)
    const seen = new Set<string>()
    let failed = 0
    for await (const entry of results) {
      if (seen.has(entry.taskId)) log.anomalies.push(`reduce (attempt ${attempt}) saw ${entry.taskId} twice`)
      seen.add(entry.taskId)
      lines.push(entryLine(entry.taskId, entry.name, entry.ok, entry.ok ? entry.result : null))
      if (!entry.ok) failed++
    }
    if (b.alwaysFail || attempt < b.failFirst) {
      record.failed = true
      throw thrown(
        b.errorKind === "effect-fail" || b.errorKind === "effect-die" ? "error" : b.errorKind,
        FINAL_ID,
        attempt
      )
    }
    if (failed > 0) {
      record.failed = true
      throw new Error(`reduce saw ${failed} failed tasks`)
    }
    return digest(lines)
  }

  return plan.kind === "mapReduce"
    ? defineJob({ name: JOB_NAME, kind: "mapReduce", process, reduce })
    : defineJob({ name: JOB_NAME, kind: "map", process })
}
