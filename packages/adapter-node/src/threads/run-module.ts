import { runJob, type RunOptions, type RunResult } from "@taskfold/core"
import { JobLoadError, loadJobs } from "../jobs.ts"
import { threadPool } from "./pool.ts"

export interface RunModuleOptions extends Omit<RunOptions, "executor"> {
  /** The job to run, when the module exports more than one. */
  readonly job?: string
  /** Worker threads the processors run on. Default: os.availableParallelism(). */
  readonly threads?: number
}

/**
 * Runs one instance of a job module's job with runJob, its processors on a thread pool of its own (closed
 * when the instance is done), so CPU-bound processors run side by side on as many cores.
 */
export const runJobModule = async (modulePath: string, options: RunModuleOptions = {}): Promise<RunResult> => {
  const { job: name, threads, ...run } = options
  const jobs = await loadJobs(modulePath)
  const job = name === undefined ? (jobs.size === 1 ? [...jobs.values()][0] : undefined) : jobs.get(name)
  if (job === undefined) {
    const known = [...jobs.keys()].join(", ")
    throw new JobLoadError(
      name === undefined
        ? `${modulePath} exports several jobs (${known}): choose one with the job option`
        : `${modulePath} exports no job named ${JSON.stringify(name)}; it exports ${known}`
    )
  }
  const pool = threadPool({ modules: [modulePath], ...(threads === undefined ? {} : { threads }) })
  try {
    return await runJob(job, { ...run, executor: pool })
  } finally {
    await pool.close()
  }
}
