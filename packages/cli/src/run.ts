import { startJob, type Job, type Progress, type RunResult } from "@taskfold/core"
import type { TaskStoreShape } from "@taskfold/core/adapter"
import { loadJobs, makeTrackerServer, openSqliteStore, scopedThreadPool } from "@taskfold/node"
import { Effect, Fiber, Schedule } from "effect"
import { CommandError, helpOption, integer, json, jsonObject, parse, threads, UsageError } from "./args.ts"
import { messageOf, outcomeLine, outcomeSummary, runEffect } from "./common.ts"
import { progressView } from "./progress.ts"

export const runHelp = `Usage: taskfold run <job-module> [options]

Runs one instance of a job in this process, on in-process workers, shows its progress on stderr and
prints its outcome as one JSON line on stdout (what the job itself prints goes to stderr). Exits 0 if
the instance succeeded, 1 if it failed.

Options:
  --job NAME       the job to run, when the module exports more than one
  --workers N      in-process workers, the tracker's own among them (default 4)
  --slots N        slots per worker (default 16)
  --threads N      worker threads the tasks of all those workers run on (default: one per core), so
                   CPU-bound processors run side by side; 0 runs them in the main thread
  --db FILE        keep the tasks in this SQLite file (default: in memory); if it holds an
                   unfinished instance of the job (the last run was killed), that one resumes
  --params JSON    the instance's params: the root task's body, ctx.params everywhere
  --config JSON    overrides of the job's config, e.g. '{"taskRetries":3}'
  -h, --help       this text
`

export const pickJob = (jobs: ReadonlyMap<string, Job>, name: string | undefined, where: string): Job => {
  if (name !== undefined) {
    const job = jobs.get(name)
    if (job === undefined)
      throw new CommandError(
        `${where} exports no job named ${JSON.stringify(name)}; it exports ${[...jobs.keys()].join(", ")}`
      )
    return job
  }
  if (jobs.size > 1)
    throw new UsageError(`${where} exports several jobs (${[...jobs.keys()].join(", ")}): choose one with --job`)
  return [...jobs.values()][0] as Job
}

export const run = async (args: ReadonlyArray<string>): Promise<number> => {
  const { values, positionals } = parse(
    args,
    {
      ...helpOption,
      job: { type: "string" },
      workers: { type: "string" },
      slots: { type: "string" },
      threads: { type: "string" },
      db: { type: "string" },
      params: { type: "string" },
      config: { type: "string" }
    },
    1
  )
  if (values.help) {
    process.stdout.write(runHelp)
    return 0
  }
  const modulePath = positionals[0]
  if (modulePath === undefined) throw new UsageError("a job module is required: taskfold run <job-module>")
  const workers = integer(values.workers, "--workers", 4)
  const slots = integer(values.slots, "--slots", 16)
  const threadCount = threads(values.threads)
  const params = json(values.params, "--params")
  const config = jsonObject(values.config, "--config")
  // stdout carries the outcome line alone: whatever jobs (or loggers) print goes to stderr.
  console.log = console.error
  console.info = console.error
  console.debug = console.error
  const job = pickJob(await loadJobs(modulePath), values.job, modulePath)

  let store: (TaskStoreShape & { close: () => void }) | undefined
  if (values.db !== undefined) {
    try {
      store = openSqliteStore(values.db)
    } catch (error) {
      throw new CommandError(`cannot open ${values.db}: ${messageOf(error)}`)
    }
  }
  const view = progressView(process.stderr)
  const watch = (progress: Effect.Effect<Progress>) =>
    Effect.forkScoped(
      Effect.repeat(
        Effect.flatMap(progress, (p) => Effect.sync(() => view.update(p))),
        Schedule.spaced(250)
      )
    )
  try {
    // A database left by a run that did not finish: resume its instances of this job instead (R-REC-1).
    const results = await runEffect(
      Effect.scoped(
        Effect.gen(function* () {
          // The in-process tracker keeps the bodies it sends, so the threads get copies;
          // stdout is for the outcome alone.
          const executor = yield* scopedThreadPool(threadCount, { modules: [modulePath], stdoutToStderr: true })
          const withExecutor = executor === undefined ? {} : { executor }
          if (store !== undefined) {
            const server = yield* makeTrackerServer({
              token: "",
              jobs: new Map([[job.name, job]]),
              store,
              localSlots: workers * slots,
              resume: (_, name) => name === job.name,
              ...withExecutor
            })
            if (server.resumed.length > 0) {
              const outcomes: RunResult[] = []
              for (const instanceId of server.resumed) {
                const tracker = server.tracker(instanceId)
                if (tracker === undefined) continue
                process.stderr.write(`resuming instance ${instanceId} of job ${job.name} from ${values.db}\n`)
                const watching = yield* watch(tracker.progress)
                const outcome = yield* tracker.outcome
                yield* Fiber.interrupt(watching)
                const progress = yield* tracker.progress
                view.update(progress)
                view.done()
                yield* tracker.released
                outcomes.push({ instanceId, ok: outcome.ok, result: outcome.result, outcome, progress })
              }
              return outcomes
            }
          }
          const handle = yield* startJob(job, {
            workers,
            slots,
            ...withExecutor,
            ...(params === undefined ? {} : { params }),
            ...(config === undefined ? {} : { config }),
            ...(store === undefined ? {} : { store })
          })
          process.stderr.write(
            `instance ${handle.instanceId} of job ${job.name} on ${workers} ` +
              `in-process worker${workers === 1 ? "" : "s"}\n`
          )
          yield* watch(handle.progress)
          const result = yield* handle.result
          view.update(result.progress)
          view.done()
          yield* handle.tracker.released
          return [result]
        })
      )
    )
    for (const result of results) {
      process.stderr.write(outcomeSummary(result.outcome))
      process.stdout.write(`${outcomeLine(result.instanceId, result.outcome)}\n`)
    }
    return results.every((result) => result.ok) ? 0 : 1
  } finally {
    store?.close()
  }
}
