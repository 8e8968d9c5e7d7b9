// The user API: define jobs, run them, read their outcomes. Adapter authors import `@taskfold/core/adapter`.
export { defineJob } from "./api/job.ts"
export { runJob, runJobEffect, startJob, type JobHandle, type RunOptions, type RunResult } from "./api/run.ts"
export type {
  BroadcastJob,
  Job,
  MapJob,
  MapReduceJob,
  Processor,
  Reducer,
  Returned,
  StandaloneJob,
  TaskContext,
  TaskView
} from "./model/job.ts"
export type { TaskBody, TaskResult } from "./model/task.ts"
export type {
  BodyOf,
  BodySchema,
  BroadcastDefinition,
  JobContext,
  JobTypes,
  LayerFor,
  MapDefinition,
  MapReduceDefinition,
  ResultOf,
  RootTask,
  ServicesOf,
  StandaloneDefinition,
  SubTask,
  TaskName,
  TaskOf,
  TaskSchemas,
  TypedResult
} from "./model/typed-job.ts"
export { JobLayerError } from "./worker/job-services.ts"
export {
  defaultConfig,
  resolveConfig,
  type FrequentSchedule,
  type JobConfig,
  type JobConfigOverrides,
  type RetryBackoff
} from "./model/config.ts"
export { ConfigError, RejectedError, StoreError, TransportError } from "./model/errors.ts"
export type {
  FailedTask,
  JobKind,
  NameProgress,
  Outcome,
  Progress,
  TaskCounts,
  WorkerProgress
} from "./model/instance.ts"
export { describeError, type TaskError } from "./model/task-error.ts"
