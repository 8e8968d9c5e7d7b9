import { httpTrackerClient } from "@taskfold/core/wire"
import { helpOption, integer, json, jsonObject, parse, token, UsageError, url } from "./args.ts"
import { describeClientError, outcomeLine, outcomeSummary, runEffect } from "./common.ts"
import { watchUntilOutcome } from "./watch.ts"

export const submitHelp = `Usage: taskfold submit <job-name> --tracker URL --token T [options]

Starts an instance of a job the tracker server knows and prints its id. With --wait it shows the
instance's progress on stderr until it ends, prints the outcome as one JSON line on stdout, and exits
0 if the instance succeeded, 1 if it failed.

Options:
  --tracker URL     the tracker server, e.g. http://127.0.0.1:7070
  --token T         the shared secret (or TASKFOLD_TOKEN)
  --params JSON     the instance's params: the root task's body, ctx.params everywhere
  --config JSON     overrides of the job's config, e.g. '{"taskRetries":3}': only keys the job lists in
                    its overridable, and limits only lowered (a refusal answers 400 and starts nothing)
  --id ID           the instance's id (default: generated); submitting an id again starts nothing
  --wait            wait for the outcome
  --patience SECS   with --wait, how long the tracker may stay unreachable (default 120)
  -h, --help        this text
`

export const submit = async (args: ReadonlyArray<string>): Promise<number> => {
  const { values, positionals } = parse(
    args,
    {
      ...helpOption,
      tracker: { type: "string" },
      token: { type: "string" },
      params: { type: "string" },
      config: { type: "string" },
      id: { type: "string" },
      wait: { type: "boolean" },
      patience: { type: "string" }
    },
    1
  )
  if (values.help) {
    process.stdout.write(submitHelp)
    return 0
  }
  const job = positionals[0]
  if (job === undefined) throw new UsageError("a job name is required: taskfold submit <job-name>")
  const tracker = url(values.tracker, "--tracker")
  const secret = token(values.token)
  const params = json(values.params, "--params")
  const config = jsonObject(values.config, "--config")
  const patienceMs = integer(values.patience, "--patience", 120) * 1000
  const client = httpTrackerClient({ baseUrl: tracker, token: secret, fetch: globalThis.fetch, timeoutMs: 15_000 })
  const describe = describeClientError(tracker)

  const instanceId = await runEffect(
    client.submit({
      job,
      ...(params === undefined ? {} : { params: params as never }),
      ...(config === undefined ? {} : { config: config as never }),
      ...(values.id === undefined ? {} : { instanceId: values.id })
    }),
    describe
  )
  if (!values.wait) {
    process.stdout.write(`${instanceId}\n`)
    return 0
  }
  process.stderr.write(`instance ${instanceId} submitted to ${tracker}\n`)
  const outcome = await watchUntilOutcome(client, tracker, instanceId, patienceMs)
  process.stderr.write(outcomeSummary(outcome))
  process.stdout.write(`${outcomeLine(instanceId, outcome)}\n`)
  return outcome.ok ? 0 : 1
}
