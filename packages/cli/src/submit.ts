import { RejectedError, TransportError, type Outcome } from "@taskfold/core"
import { httpTrackerClient, type InstanceStatus } from "@taskfold/core/wire"
import { Effect, Exit } from "effect"
import { CommandError, helpOption, integer, json, jsonObject, parse, token, UsageError, url } from "./args.ts"
import { describeClientError, outcomeLine, outcomeSummary, runEffect } from "./common.ts"
import { progressView } from "./progress.ts"

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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

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

  const view = progressView(process.stderr)
  const pollMs = process.stderr.isTTY ? 250 : 500
  let unreachableSince: number | undefined
  let outcome: Outcome | null = null
  while (outcome === null) {
    const exit = await Effect.runPromiseExit(client.status(instanceId))
    if (Exit.isSuccess(exit)) {
      const status: InstanceStatus = exit.value
      if (unreachableSince !== undefined) process.stderr.write("the tracker answers again\n")
      unreachableSince = undefined
      view.update(status.progress)
      outcome = status.outcome
      if (outcome !== null) break
    } else {
      const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
      const error = failure?._tag === "Fail" ? failure.error : undefined
      const transient =
        error instanceof TransportError && (error.reason === "unreachable" || error.reason === "timeout")
      if (!transient) {
        if (error instanceof RejectedError && error.reason === "unknown-instance") {
          throw new CommandError(
            `the tracker at ${tracker} no longer knows instance ${instanceId} (was it restarted without --db?)`
          )
        }
        throw new CommandError(error === undefined ? `lost track of instance ${instanceId}` : describe(error))
      }
      const now = Date.now()
      if (unreachableSince === undefined) {
        unreachableSince = now
        process.stderr.write(`cannot reach the tracker at ${tracker}; retrying for ${patienceMs / 1000} s\n`)
      } else if (now - unreachableSince > patienceMs) {
        throw new CommandError(`cannot reach the tracker at ${tracker} for ${patienceMs / 1000} s: ${error.message}`)
      }
    }
    await sleep(pollMs)
  }
  view.done()
  process.stderr.write(outcomeSummary(outcome))
  process.stdout.write(`${outcomeLine(instanceId, outcome)}\n`)
  return outcome.ok ? 0 : 1
}
