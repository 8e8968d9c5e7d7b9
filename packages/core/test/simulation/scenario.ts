/**
 * Scenarios for the system simulation, drawn by fast-check: a job plan, a config (small timeouts, or the
 * defaults), workers, a fault policy, store outages, and crashes, joins and restarts in the fault phase.
 */
import fc from "fast-check"
import type { JobConfigOverrides } from "../../src/index.ts"
import type { FaultPolicy, FaultRates } from "../../src/testing/fault-network.ts"
import type { Scenario, SimEvent } from "./harness.ts"
import { jobPlanArb, placeTree, type JobPlan } from "./jobs.ts"

/** Simulated time the busy processors of a plan take, if every attempt ran one after the other. */
const busyTotal = (plan: JobPlan, attempts: number): number => {
  let total = plan.kind === "mapReduce" ? plan.final.busyMs : 0
  for (const placed of placeTree(plan.root).values()) total += placed.node.behaviour.busyMs
  return total * attempts
}

/** 0, or up to max (drawn in thousandths: fc.double leans hard on its bounds). */
const rate = (max: number): fc.Arbitrary<number> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.constant(0) },
    { weight: 3, arbitrary: fc.integer({ min: 1, max: Math.round(max * 1_000) }).map((n) => n / 1_000) }
  )

const ratesArb: fc.Arbitrary<FaultRates> = fc.record({
  refuse: rate(0.15),
  lose: rate(0.15),
  loseAnswer: rate(0.15),
  duplicate: rate(0.2),
  delay: rate(0.4)
})

export const policyArb: fc.Arbitrary<FaultPolicy> = fc
  .record({
    rates: ratesArb,
    maxDelayMs: fc.constantFrom(0, 50, 500, 3_000, 20_000),
    timeoutMs: fc.constantFrom(100, 1_000, 5_000),
    maxSendTasks: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
    // A single task always fits in 150 bytes: mostly only batches are split; now and then a single task does not
    // fit in any message and must fail with a clear reason (R-DISP-10).
    maxSendBytes: fc.oneof(
      { weight: 6, arbitrary: fc.constant(undefined) },
      { weight: 3, arbitrary: fc.integer({ min: 150, max: 800 }) },
      { weight: 1, arbitrary: fc.integer({ min: 40, max: 100 }) }
    ),
    maxReportBytes: fc.option(fc.integer({ min: 64, max: 2_048 }), { nil: undefined }),
    // Some runs fault one kind of message much more than the others.
    hot: fc.option(
      fc.record({
        kind: fc.constantFrom("send", "stop", "outcome", "report", "map", "heartbeat", "readResults"),
        rates: fc.record({ lose: rate(0.6), loseAnswer: rate(0.6), duplicate: rate(0.6) })
      }),
      { nil: undefined }
    )
  })
  .map(
    (drawn): FaultPolicy => ({
      ...drawn.rates,
      maxDelayMs: drawn.maxDelayMs,
      timeoutMs: drawn.timeoutMs,
      maxSendTasks: drawn.maxSendTasks,
      maxSendBytes: drawn.maxSendBytes,
      maxReportBytes: drawn.maxReportBytes,
      ...(drawn.hot === undefined ? {} : { byKind: { [drawn.hot.kind]: drawn.hot.rates } })
    })
  )

/** Small timeouts, so retries, redeliveries and losses happen within a few simulated seconds. */
const smallConfigArb = fc
  .record({
    heartbeatInterval: fc.integer({ min: 200, max: 1_000 }),
    workerTimeoutBeats: fc.integer({ min: 2, max: 5 }),
    ackTimeout: fc.integer({ min: 300, max: 3_000 }),
    maxRedeliveries: fc.integer({ min: 1, max: 8 }),
    taskRetries: fc.integer({ min: 0, max: 3 }),
    backoff: fc.integer({ min: 0, max: 500 }),
    dispatchBatchSize: fc.integer({ min: 1, max: 8 }),
    queueAllowance: fc.integer({ min: 0, max: 4 }),
    maxWaitingTasks: fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constant(100_000)),
    routing: fc.constantFrom<"round-robin" | "least-loaded">("round-robin", "least-loaded"),
    localWorker: fc.constantFrom<"include" | "exclude">("include", "exclude"),
    runReduceIfFail: fc.boolean(),
    maxReportedErrors: fc.integer({ min: 1, max: 10 }),
    maxResultBytes: fc.integer({ min: 200, max: 1_000 }),
    pull: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined, freq: 4 })
  })
  .map(
    (c): JobConfigOverrides => ({
      heartbeatInterval: c.heartbeatInterval,
      workerTimeout: c.heartbeatInterval * c.workerTimeoutBeats,
      ackTimeout: c.ackTimeout,
      maxRedeliveries: c.maxRedeliveries,
      taskRetries: c.taskRetries,
      retryBackoff: { kind: "fixed", ms: c.backoff },
      dispatchBatchSize: c.dispatchBatchSize,
      queueAllowance: c.queueAllowance,
      maxWaitingTasks: c.maxWaitingTasks,
      routing: c.routing,
      localWorker: c.localWorker,
      runReduceIfFail: c.runReduceIfFail,
      maxReportedErrors: c.maxReportedErrors,
      maxResultBytes: c.maxResultBytes,
      // Pull mode at times (R-DISP-9): workers ask for pages, never more than maxInFlight out.
      ...(c.pull === undefined ? {} : { dispatchMode: "pull" as const, maxInFlight: c.pull })
    })
  )

/** The defaults, but for a small maxResultBytes (results over it are drawn) and, at times, more retries. */
const defaultConfigArb = fc
  .record({
    maxResultBytes: fc.integer({ min: 200, max: 1_000 }),
    taskRetries: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined })
  })
  .map(
    (c): JobConfigOverrides => ({
      maxResultBytes: c.maxResultBytes,
      ...(c.taskRetries === undefined ? {} : { taskRetries: c.taskRetries })
    })
  )

const eventArb = (downMax: number): fc.Arbitrary<SimEvent> =>
  fc.oneof(
    fc.record({ _tag: fc.constant("CrashWorker" as const), pick: fc.nat(7) }),
    fc.record({
      _tag: fc.constant("RestartWorker" as const),
      pick: fc.nat(7),
      downMs: fc.integer({ min: 0, max: downMax })
    }),
    fc.record({ _tag: fc.constant("AddWorker" as const), slots: fc.integer({ min: 1, max: 4 }) }),
    fc.record({ _tag: fc.constant("EndStanding" as const), pick: fc.nat(7), seen: fc.boolean() }),
    fc.record({
      _tag: fc.constant("RestartTracker" as const),
      process: fc.boolean(),
      downMs: fc.integer({ min: 0, max: downMax })
    })
  )

export interface ScenarioLimits {
  readonly maxTasks: number
  readonly maxDepth: number
  /** Storms: a store that fails 40-70% of writes and tracker restarts in every run (R-RETRY-4 with R-REC-1). */
  readonly storm?: boolean
}

const stormEvents = fc.array(
  fc.record({
    share: fc.integer({ min: 0, max: 1_000 }),
    event: fc.record({
      _tag: fc.constant("RestartTracker" as const),
      process: fc.boolean(),
      downMs: fc.integer({ min: 0, max: 2_000 })
    })
  }),
  { minLength: 1, maxLength: 3 }
)

export const scenarioArb = (limits: ScenarioLimits): fc.Arbitrary<Scenario> =>
  fc
    .record({
      seed: fc.integer(),
      job: jobPlanArb({ maxDepth: limits.maxDepth, maxTasks: limits.maxTasks, mustFail: 0.025 }),
      small: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      smallConfig: smallConfigArb,
      defaultConfig: defaultConfigArb,
      remotes: fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 3 }),
      localSlots: fc.integer({ min: 1, max: 4 }),
      sinks: fc.oneof(
        { weight: 6, arbitrary: fc.constant(0) },
        { weight: 1, arbitrary: fc.integer({ min: 1, max: 2 }) }
      ),
      standing: fc.oneof(
        { weight: 2, arbitrary: fc.constant([]) },
        { weight: 1, arbitrary: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 2 }) }
      ),
      policy: policyArb,
      // Now and then a store that fails most writes: the tracker gives writes up (R-RETRY-4).
      storeFailRate: limits.storm
        ? fc.integer({ min: 400, max: 700 }).map((n) => n / 1_000)
        : fc.oneof(
            { weight: 12, arbitrary: fc.constant(0) },
            { weight: 6, arbitrary: rate(0.3) },
            { weight: 1, arbitrary: rate(0.7) }
          ),
      faulty: limits.storm
        ? fc.constant(true)
        : fc.oneof({ weight: 1, arbitrary: fc.constant(false) }, { weight: 6, arbitrary: fc.constant(true) }),
      faultMs: fc.integer({ min: 1_000, max: 60_000 }),
      events: limits.storm
        ? stormEvents
        : fc.array(fc.record({ share: fc.integer({ min: 0, max: 1_000 }), event: eventArb(10_000) }), { maxLength: 5 }),
      step: fc.constantFrom(1, 2)
    })
    .map((d): Scenario => {
      const config = d.small ? d.smallConfig : d.defaultConfig
      // After calm each task runs at most taskRetries + 1 attempts more, plus the one it may be in: on one slot
      // the busy ones take that long one after the other.
      const busy = busyTotal(d.job, (config.taskRetries ?? 1) + 2)
      return {
        seed: d.seed,
        job: d.job,
        config,
        remotes: d.remotes,
        localSlots: d.localSlots,
        standing: d.standing,
        sinks: d.sinks,
        policy: d.policy,
        storeFailRate: d.faulty ? d.storeFailRate : 0,
        faultMs: d.faulty ? d.faultMs : 0,
        events: d.faulty
          ? d.events.map((e) => ({ at: Math.floor((e.share * d.faultMs) / 1_000), event: e.event }))
          : [],
        // A step well below ackTimeout (300 ms at least): the tracker is never late by more than that. Default
        // timeouts are seconds long: a coarser step keeps the run short in real time.
        stepMs: d.small ? d.step * 50 : d.step * 250,
        calmBoundMs: (d.small ? 5 * 60_000 : 15 * 60_000) + busy
      }
    })
