import { httpTrackerClient } from "@taskfold/core/wire"
import { helpOption, integer, parse, token, UsageError, url } from "./args.ts"
import { describeClientError, runEffect } from "./common.ts"

export const listHelp = `Usage: taskfold list --tracker URL --token T [options]

Lists the tracker's instances, newest first: the running ones, then the finished ones it still keeps.
One line each: id, state, job.

Options:
  --tracker URL    the tracker server, e.g. http://127.0.0.1:7070
  --token T        the tracker's secret (or TASKFOLD_TOKEN)
  --job NAME       only instances of this job
  --state S        only running, succeeded or failed ones
  --limit N        at most N (default 100)
  --json           print them as one JSON line
  -h, --help       this text
`

const states = ["running", "succeeded", "failed"] as const

export const list = async (args: ReadonlyArray<string>): Promise<number> => {
  const { values } = parse(
    args,
    {
      ...helpOption,
      tracker: { type: "string" },
      token: { type: "string" },
      job: { type: "string" },
      state: { type: "string" },
      limit: { type: "string" },
      json: { type: "boolean" }
    },
    0
  )
  if (values.help) {
    process.stdout.write(listHelp)
    return 0
  }
  const state = values.state as (typeof states)[number] | undefined
  if (state !== undefined && !states.includes(state))
    throw new UsageError(`--state must be one of ${states.join(", ")}, not ${JSON.stringify(values.state)}`)
  const tracker = url(values.tracker, "--tracker")
  const client = httpTrackerClient({ baseUrl: tracker, token: token(values.token), fetch: globalThis.fetch })
  const instances = await runEffect(
    client.list({
      limit: integer(values.limit, "--limit", 100),
      ...(values.job === undefined ? {} : { job: values.job }),
      ...(state === undefined ? {} : { state })
    }),
    describeClientError(tracker)
  )
  if (values.json) process.stdout.write(`${JSON.stringify(instances)}\n`)
  else {
    const width = Math.max(11, ...instances.map((entry) => entry.instanceId.length))
    process.stdout.write(`${"instance".padEnd(width)}  ${"state".padEnd(9)}  job\n`)
    for (const entry of instances)
      process.stdout.write(`${entry.instanceId.padEnd(width)}  ${entry.state.padEnd(9)}  ${entry.job}\n`)
  }
  return 0
}
