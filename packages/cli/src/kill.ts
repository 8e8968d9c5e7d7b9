import { httpTrackerClient } from "@taskfold/core/wire"
import { helpOption, parse, token, UsageError, url } from "./args.ts"
import { describeClientError, runEffect } from "./common.ts"

export const killHelp = `Usage: taskfold kill <instance-id> --tracker URL --token T [options]

Kills an instance: its workers stop its tasks, what is not finished fails with "killed", and the
instance fails with the reason, without reduce. With --task, only that task is killed.

Options:
  --tracker URL    the tracker server, e.g. http://127.0.0.1:7070
  --token T        the tracker's secret (or TASKFOLD_TOKEN)
  --reason TEXT    why (default "killed by the operator")
  --task ID        kill this task only
  -h, --help       this text
`

export const kill = async (args: ReadonlyArray<string>): Promise<number> => {
  const { values, positionals } = parse(
    args,
    {
      ...helpOption,
      tracker: { type: "string" },
      token: { type: "string" },
      reason: { type: "string" },
      task: { type: "string" }
    },
    1
  )
  if (values.help) {
    process.stdout.write(killHelp)
    return 0
  }
  const instanceId = positionals[0]
  if (instanceId === undefined) throw new UsageError("an instance id is required: taskfold kill <instance-id>")
  const tracker = url(values.tracker, "--tracker")
  const client = httpTrackerClient({ baseUrl: tracker, token: token(values.token), fetch: globalThis.fetch })
  const reason = values.reason ?? "killed by the operator"
  await runEffect(client.kill(instanceId, reason, values.task ?? null), describeClientError(tracker))
  process.stderr.write(`${values.task === undefined ? `instance ${instanceId}` : `task ${values.task}`} killed\n`)
  return 0
}
