import { Effect, Schema } from "effect"
import { ConfigError } from "./errors.ts"

const PositiveInt = Schema.Int.check(Schema.isGreaterThan(0))
const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
/** Durations are milliseconds. */
const Millis = NonNegativeInt

/**
 * In milliseconds: `fixed`, or `exponential`: baseMs × 2^(failures − 1), at most maxMs, less a random share of
 * up to `jitter` of it (R-RETRY-1).
 */
export const RetryBackoff = Schema.Union([
  Schema.Struct({ kind: Schema.Literal("fixed"), ms: Millis }),
  Schema.Struct({
    kind: Schema.Literal("exponential"),
    baseMs: Millis,
    maxMs: Millis,
    /** 0..1: the share of each delay drawn at random, from the instance's seed. */
    jitter: Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 }))
  })
])
export type RetryBackoff = typeof RetryBackoff.Type

/** When a frequent job's sub-instances start (R-FREQ-1). */
export const FrequentSchedule = Schema.Struct({
  mode: Schema.Literals(["fixedRate", "fixedDelay"]),
  /** Period (fixedRate) or gap after the previous sub-instance ends (fixedDelay); at least 50 ms. */
  everyMs: Schema.Int.check(Schema.isGreaterThanOrEqualTo(50))
})
export type FrequentSchedule = typeof FrequentSchedule.Type

/** `"500"`, `"500/s"`, `"30/m"`, `"100/h"`: sub-tasks dispatched per unit of time (R-DISP-6). */
export const DispatchRate = Schema.String.check(Schema.isPattern(/^[1-9][0-9]*(\/[smh])?$/))

/** Every knob of an instance, with SPEC.md's defaults. Jobs override any subset. */
export const JobConfig = Schema.Struct({
  /** Tasks sent to one worker in one batch, at most (R-DISP-1). */
  dispatchBatchSize: PositiveInt,
  /** Milliseconds a dispatched task waits for its receipt before it goes back to Waiting, attempt + 1 (R-DISP-8). */
  ackTimeout: Millis,
  /** Returns to Waiting for want of a receipt (ack time-outs, failed sends) before a task fails `undeliverable`. */
  maxRedeliveries: NonNegativeInt,
  /** Failed attempts a task may retry (R-RETRY-1); a `result-too-large` failure is never retried (R-RETRY-3). */
  taskRetries: NonNegativeInt,
  /** The wait before a retry: fixed, or exponential from `baseMs` doubling up to `maxMs`, with jitter (R-RETRY-1). */
  retryBackoff: RetryBackoff,
  /** Bytes of one mapped item's encoded body; a map call with a larger item fails and stores nothing (R-MAP-3). */
  maxTaskBodyBytes: PositiveInt,
  /** Bytes of UTF-8 of one task's result; a larger one fails its task `result-too-large`, never cut (R-RETRY-3). */
  maxResultBytes: PositiveInt,
  /** Waiting tasks held in memory; above it map calls suspend until the queue drains below half (R-MAP-4). */
  maxWaitingTasks: PositiveInt,
  /** Bytes of the instance context as JSON; an append that would pass it is dropped with a warning (R-CTX-1). */
  maxContextBytes: PositiveInt,
  /** Milliseconds between progress pushes to observers (R-PROG-2). */
  progressInterval: PositiveInt,
  /** Milliseconds an instance (frequent: each sub-instance) may run before it fails "timed out"; null: no limit. */
  instanceTimeout: Schema.NullOr(PositiveInt),
  /** Milliseconds between a worker's heartbeats (R-WORK-1); also how long a worker whose send failed rests. */
  heartbeatInterval: PositiveInt,
  /** Milliseconds of silence after which a worker is lost and its tasks fail over (R-WORK-1, R-WORK-2). */
  workerTimeout: PositiveInt,
  /** Tasks a worker may hold beyond its free slots, so it never idles between batches. */
  queueAllowance: NonNegativeInt,
  /** Slots the tracker believes of one worker, whatever it announces: a peer cannot claim the whole job. */
  maxWorkerSlots: PositiveInt,
  /** How sub-tasks spread over workers with credit: round-robin, or to the one with the most credit (R-DISP-3). */
  routing: Schema.Literals(["round-robin", "least-loaded"]),
  /** `exclude` keeps sub-tasks off the tracker's own worker while another worker is alive (R-DISP-5). */
  localWorker: Schema.Literals(["include", "exclude"]),
  /** Caps sub-task dispatch with a token bucket: `"500"` (per second), `"500/s"`, `"30/m"`, `"100/h"`; null: no cap. */
  dispatchRate: Schema.NullOr(DispatchRate),
  /** `push`: the tracker sends batches by credit; `pull`: workers ask for sub-tasks (R-DISP-9). */
  dispatchMode: Schema.Literals(["push", "pull"]),
  /** Pull mode: pulled + running sub-tasks of the instance never exceed this (R-DISP-9). */
  maxInFlight: PositiveInt,
  /** A lost worker's unfinished sub-tasks go back to Waiting (true) or fail `worker-lost` (false) (R-WORK-2). */
  failover: Schema.Boolean,
  /** With a failed task, reduce (or postProcess) still runs, failures included; by default it is skipped (R-FIN-3). */
  runReduceIfFail: Schema.Boolean,
  /** Failed tasks an outcome names with their errors (R-FIN-8). */
  maxReportedErrors: NonNegativeInt,
  /** Workers an instance admits at most (null: any number); one more is refused `worker-limit` (R-WORK-5). */
  maxWorkers: Schema.NullOr(PositiveInt),
  /** A schedule makes the job frequent: a sub-instance per trigger, until killed (R-FREQ-1); null: one run. */
  frequent: Schema.NullOr(FrequentSchedule),
  /** Frequent jobs: sub-instances running at once; a trigger beyond it is recorded as skipped (R-FREQ-2). */
  maxConcurrentSubInstances: PositiveInt
})
export type JobConfig = typeof JobConfig.Type

export const defaultConfig: JobConfig = {
  dispatchBatchSize: 256,
  ackTimeout: 15_000,
  maxRedeliveries: 5,
  taskRetries: 1,
  retryBackoff: { kind: "exponential", baseMs: 1_000, maxMs: 60_000, jitter: 0.2 },
  maxTaskBodyBytes: 64 * 1024,
  maxResultBytes: 1024 * 1024,
  maxWaitingTasks: 100_000,
  maxContextBytes: 8 * 1024,
  progressInterval: 5_000,
  instanceTimeout: null,
  heartbeatInterval: 5_000,
  workerTimeout: 15_000,
  queueAllowance: 256,
  maxWorkerSlots: 1_024,
  routing: "round-robin",
  localWorker: "include",
  dispatchRate: null,
  dispatchMode: "push",
  maxInFlight: 1_024,
  failover: true,
  runReduceIfFail: false,
  maxReportedErrors: 10,
  maxWorkers: null,
  frequent: null,
  maxConcurrentSubInstances: 1
}

export const JobConfigOverrides = JobConfig.mapFields((fields) => {
  const out: Record<string, Schema.Top> = {}
  for (const [key, schema] of Object.entries(fields)) out[key] = Schema.optionalKey(schema)
  return out as { [K in keyof typeof fields]: Schema.optionalKey<(typeof fields)[K]> }
})
export type JobConfigOverrides = Partial<JobConfig>

/** Defaults merged with overrides, validated; an unknown or bad field is a ConfigError. */
export const resolveConfig = (overrides: unknown = {}): Effect.Effect<JobConfig, ConfigError> =>
  Schema.decodeUnknownEffect(JobConfigOverrides)(overrides, { onExcessProperty: "error" }).pipe(
    Effect.map((given) => ({ ...defaultConfig, ...given }) as JobConfig),
    Effect.mapError((error) => new ConfigError({ reason: "invalid-config", message: error.message }))
  )

export const resolveConfigSync = (overrides: unknown = {}): JobConfig => Effect.runSync(resolveConfig(overrides))

/** Tokens per millisecond of a dispatch rate. */
export const parseRate = (rate: string): { count: number; perMs: number } => {
  const [count, unit = "s"] = rate.split("/")
  const perMs = unit === "h" ? 3_600_000 : unit === "m" ? 60_000 : 1_000
  return { count: Number(count), perMs }
}
