import { Effect, Metric } from "effect"

/**
 * What trackers measure, as Effect metrics (no IO: the runtime's registry holds them): batch sizes, store
 * write latency and redeliveries, each labelled with the job. A host renders them (wire/metrics-text.ts).
 */
const sizes = Metric.exponentialBoundaries({ start: 1, factor: 4, count: 8 })

export const dispatchBatchTasks = Metric.histogram("taskfold_dispatch_batch_tasks", {
  description: "Tasks per batch sent to a worker",
  boundaries: sizes
})
export const reportBatchReports = Metric.histogram("taskfold_report_batch_reports", {
  description: "Status reports per message from a worker",
  boundaries: sizes
})
export const storeWriteSeconds = Metric.histogram("taskfold_store_write_seconds", {
  description: "Time of one store write (a step's batch of rows), retries included",
  boundaries: Metric.exponentialBoundaries({ start: 0.000_25, factor: 2, count: 14 })
})
export const redeliveries = Metric.counter("taskfold_redeliveries_total", {
  description: "Tasks sent back to Waiting because their delivery got no receipt",
  incremental: true
})

/** The metrics of one job's trackers. */
export const jobMetrics = (job: string) => {
  const attributes = { job }
  const dispatch = Metric.withAttributes(dispatchBatchTasks, attributes)
  const reports = Metric.withAttributes(reportBatchReports, attributes)
  const writes = Metric.withAttributes(storeWriteSeconds, attributes)
  const redelivered = Metric.withAttributes(redeliveries, attributes)
  return {
    dispatched: (tasks: number) => Metric.update(dispatch, tasks),
    reported: (count: number) => Metric.update(reports, count),
    wrote: (seconds: number) => Metric.update(writes, seconds),
    redelivered: (count: number) => (count === 0 ? Effect.void : Metric.update(redelivered, count))
  }
}
