import { Effect, Metric } from "effect"
import type { TrackerHost } from "../host/host.ts"

/** A gauge read when scraped: one sample per label set. */
export interface ScrapedGauge {
  readonly name: string
  readonly help: string
  readonly samples: ReadonlyArray<{ readonly labels: Readonly<Record<string, string>>; readonly value: number }>
}

const escapeLabel = (value: string) => value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")

const labels = (set: Readonly<Record<string, string>> | undefined, extra?: [string, string]): string => {
  const pairs = Object.entries(set ?? {})
  if (extra !== undefined) pairs.push(extra)
  return pairs.length === 0 ? "" : `{${pairs.map(([key, value]) => `${key}="${escapeLabel(value)}"`).join(",")}}`
}

/**
 * The Prometheus text format (0.0.4) of taskfold's Effect metrics (tracker/metrics.ts) and of gauges read
 * at the scrape. Histograms give cumulative buckets, `+Inf`, sum and count.
 */
export const prometheusText = (
  snapshots: ReadonlyArray<Metric.Metric.Snapshot>,
  gauges: ReadonlyArray<ScrapedGauge>
) => {
  const lines: string[] = []
  const byName = new Map<string, Metric.Metric.Snapshot[]>()
  for (const snapshot of snapshots) {
    if (!snapshot.id.startsWith("taskfold_")) continue
    const list = byName.get(snapshot.id) ?? []
    list.push(snapshot)
    byName.set(snapshot.id, list)
  }
  for (const [name, list] of byName) {
    const first = list[0] as Metric.Metric.Snapshot
    if (first.description !== undefined) lines.push(`# HELP ${name} ${first.description}`)
    lines.push(
      `# TYPE ${name} ${first.type === "Histogram" ? "histogram" : first.type === "Counter" ? "counter" : "gauge"}`
    )
    for (const snapshot of list) {
      const set = snapshot.attributes
      if (snapshot.type === "Histogram") {
        const state = snapshot.state
        for (const [bound, count] of state.buckets)
          lines.push(`${name}_bucket${labels(set, ["le", String(bound)])} ${count}`)
        lines.push(`${name}_bucket${labels(set, ["le", "+Inf"])} ${state.count}`)
        lines.push(`${name}_sum${labels(set)} ${state.sum}`)
        lines.push(`${name}_count${labels(set)} ${state.count}`)
      } else if (snapshot.type === "Counter") lines.push(`${name}${labels(set)} ${String(snapshot.state.count)}`)
      else if (snapshot.type === "Gauge") lines.push(`${name}${labels(set)} ${String(snapshot.state.value)}`)
    }
  }
  for (const gauge of gauges) {
    lines.push(`# HELP ${gauge.name} ${gauge.help}`, `# TYPE ${gauge.name} gauge`)
    for (const sample of gauge.samples) lines.push(`${gauge.name}${labels(sample.labels)} ${sample.value}`)
  }
  return `${lines.join("\n")}\n`
}

const STATES = ["waiting", "dispatched", "running", "succeeded", "failed"] as const

/** Gauges of a host's live instances: instances and tasks by state and job, workers known and unhealthy. */
export const hostGauges = (host: Pick<TrackerHost, "instances">): Effect.Effect<ReadonlyArray<ScrapedGauge>> =>
  Effect.gen(function* () {
    const instances = new Map<string, number>()
    const tasks = new Map<string, { job: string; name: string; state: string; value: number }>()
    const workers = new Map<string, Set<string>>()
    const unhealthy = new Map<string, Set<string>>()
    for (const instance of host.instances()) {
      instances.set(instance.job, (instances.get(instance.job) ?? 0) + 1)
      const progress = yield* instance.tracker.progress
      for (const [name, counts] of Object.entries(progress.byName)) {
        for (const state of STATES) {
          const key = `${instance.job}\u0000${name}\u0000${state}`
          const entry = tasks.get(key) ?? { job: instance.job, name, state, value: 0 }
          entry.value += counts[state]
          tasks.set(key, entry)
        }
      }
      for (const [id, worker] of Object.entries(progress.byWorker)) {
        const known = workers.get(instance.job) ?? new Set<string>()
        known.add(id)
        workers.set(instance.job, known)
        if (worker.unhealthy === true) unhealthy.set(instance.job, (unhealthy.get(instance.job) ?? new Set()).add(id))
      }
    }
    const perJob = (counts: Map<string, number | Set<string>>) =>
      [...counts].map(([job, value]) => ({ labels: { job }, value: typeof value === "number" ? value : value.size }))
    return [
      { name: "taskfold_instances_running", help: "Live instances by job", samples: perJob(instances) },
      {
        name: "taskfold_tasks",
        help: "Tasks of live instances by job, task name and state",
        samples: [...tasks.values()].map(({ job, name, state, value }) => ({ labels: { job, name, state }, value }))
      },
      { name: "taskfold_workers", help: "Workers known to live instances, by job", samples: perJob(workers) },
      {
        name: "taskfold_workers_unhealthy",
        help: "Workers whose deliveries got no receipt twice in a row, by job",
        samples: perJob(unhealthy)
      }
    ]
  }).pipe(Effect.orElseSucceed(() => []))

/** The text a host's `/metrics` answers: the trackers' metrics and the host's gauges, plus `extra`. */
export const hostMetricsText = (
  host: Pick<TrackerHost, "instances">,
  extra: ReadonlyArray<ScrapedGauge> = []
): Effect.Effect<string> =>
  Effect.map(Effect.all([Metric.snapshot, hostGauges(host)]), ([snapshots, gauges]) =>
    prometheusText(snapshots, [...gauges, ...extra])
  )
