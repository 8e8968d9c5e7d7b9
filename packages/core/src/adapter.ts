// What adapter authors need: the ports, the tracker and worker runtimes, the in-memory adapters and the
// model's schemas. The user API is `@taskfold/core`; the pure machine is `@taskfold/core/machine`.
export { TaskStore, type StoredResult, type TaskStoreShape } from "./ports/task-store.ts"
export { Transport, type TransportShape } from "./ports/transport.ts"
export {
  OutcomeLog,
  type OutcomeLogShape,
  type OutcomeRecord,
  type OutcomeRetention
} from "./ports/outcome-log.ts"
export { finishedTracker } from "./tracker/finished.ts"
export {
  makeTrackerHost,
  type HostedInstance,
  type InstanceSummary,
  type StartRequest,
  type TrackerHost,
  type TrackerHostOptions
} from "./host/host.ts"
export { makeOnDemandWorker, type OnDemandWorker } from "./host/on-demand-worker.ts"
export { SubmitRequest } from "./model/submit.ts"
export type { StandingWorker } from "./machine/state.ts"
export {
  resumeTracker,
  startTracker,
  type NewTrackerOptions,
  type Tracker,
  type TrackerError,
  type TrackerHooks
} from "./tracker/tracker.ts"
export {
  startWorker,
  type LinkError,
  type TrackerLink,
  type WorkerHandle,
  type WorkerOptions
} from "./worker/runtime.ts"
export {
  countResults,
  resultStream,
  runTask,
  settleValue,
  type Executor,
  type Settled,
  type TaskCalls,
  type TaskRun
} from "./worker/execute.ts"
export {
  fromCallError,
  Outbox,
  toCallError,
  type CallError,
  type CallMethod,
  type FromGuest,
  type GuestPort,
  type HostPort,
  type MessagePortLike,
  type ToGuest
} from "./executor/protocol.ts"
export { serveExecutorPort, type JobLookup } from "./executor/guest.ts"
export { portExecutor, type PortExecutor, type PortExecutorOptions } from "./executor/port-executor.ts"
export { makeMemoryStore, MemoryStoreLayer } from "./memory/store.ts"
export { makeMemoryOutcomeLog } from "./memory/outcome-log.ts"
export { checkChanges, type SqlDriver, type SqlRow, type SqlStatement, type SqlValue } from "./sql/driver.ts"
export { sqliteStoreError } from "./sql/errors.ts"
export { readSqlBusyWorkers, readSqlInstanceRow } from "./sql/lookups.ts"
export { makeSqlOutcomeLog } from "./sql/outcome-log.ts"
export { migrateSqlSchema, SCHEMA_VERSION } from "./sql/schema.ts"
export { makeSqlStore } from "./sql/store.ts"
export { directLink, makeMemoryNetwork, type MemoryNetwork } from "./memory/transport.ts"
export {
  DispatchRate,
  FrequentSchedule,
  JobConfig,
  JobConfigOverrides,
  parseRate,
  resolveConfigSync,
  RetryBackoff
} from "./model/config.ts"
export { Id, idProblem, MAX_ID_LENGTH } from "./model/id.ts"
export { FailedTask, InstanceRow, JobKind, Outcome, RunCounters, RunRecord, TaskCounts } from "./model/instance.ts"
export {
  ContextAppend,
  DispatchedTask,
  Heartbeat,
  HeartbeatReply,
  KillRequest,
  MapRequest,
  MAX_SLOTS,
  PullRequest,
  ReportBatch,
  ReportsReply,
  StatusReport,
  StopMessage,
  TaskBatch
} from "./model/messages.ts"
export {
  BROADCAST_NAME,
  FINAL_NAME,
  isTerminal,
  ReportedStatusSchema,
  ROOT_NAME,
  statusName,
  TaskKind,
  TaskKindSchema,
  TaskStatus,
  TaskStatusSchema,
  type ReportedStatus
} from "./model/status.ts"
export { ResultsPage, StoredInstance, TerminalCount, WriteBatch } from "./model/store.ts"
export { TaskBody, TaskRow, TaskUpdate } from "./model/task.ts"
export {
  decodeTaskError,
  encodeTaskError,
  MAX_CAUSE_DEPTH,
  MAX_MESSAGE_LENGTH,
  safeJson,
  taskfoldError,
  TaskErrorSchema,
  toTaskError
} from "./model/task-error.ts"
