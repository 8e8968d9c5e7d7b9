import { Effect, Schema } from "effect"
import { ConfigError } from "./errors.ts"

const PositiveInt = Schema.Int.check(Schema.isGreaterThan(0))
const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
/** Durations are milliseconds. */
const Millis = NonNegativeInt

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
  dispatchBatchSize: PositiveInt,
  ackTimeout: Millis,
  maxRedeliveries: NonNegativeInt,
  taskRetries: NonNegativeInt,
  retryBackoff: RetryBackoff,
  maxTaskBodyBytes: PositiveInt,
  maxResultBytes: PositiveInt,
  maxWaitingTasks: PositiveInt,
  maxContextBytes: PositiveInt,
  progressInterval: PositiveInt,
  instanceTimeout: Schema.NullOr(PositiveInt),
  heartbeatInterval: PositiveInt,
  workerTimeout: PositiveInt,
  /** Tasks a worker may hold beyond its free slots, so it never idles between batches. */
  queueAllowance: NonNegativeInt,
  /** Slots the tracker believes of one worker, whatever it announces: a peer cannot claim the whole job. */
  maxWorkerSlots: PositiveInt,
  routing: Schema.Literals(["round-robin", "least-loaded"]),
  localWorker: Schema.Literals(["include", "exclude"]),
  dispatchRate: Schema.NullOr(DispatchRate),
  dispatchMode: Schema.Literals(["push", "pull"]),
  /** Pull mode: pulled + running sub-tasks of the instance never exceed this (R-DISP-9). */
  maxInFlight: PositiveInt,
  failover: Schema.Boolean,
  runReduceIfFail: Schema.Boolean,
  /** Failed tasks an outcome names with their errors (R-FIN-8). */
  maxReportedErrors: NonNegativeInt,
  maxWorkers: Schema.NullOr(PositiveInt),
  frequent: Schema.NullOr(FrequentSchedule),
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
