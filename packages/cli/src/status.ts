import { httpTrackerClient } from "@taskfold/core/wire"
import { helpOption, parse, token, UsageError, url } from "./args.ts"
import { describeClientError, runEffect } from "./common.ts"
import { describeStatus } from "./progress.ts"

export const statusHelp = `Usage: taskfold status <instance-id> --tracker URL --token T [--json]

Shows an instance's progress per task name and per worker, and its outcome once it has one. Finished
instances are answered too. Exits 0 if the tracker knows the instance, 1 otherwise.

Options:
  --tracker URL    the tracker server, e.g. http://127.0.0.1:7070
  --token T        the shared secret (or TASKFOLD_TOKEN)
  --json           print the status as one JSON line
  -h, --help       this text
`

export const status = async (args: ReadonlyArray<string>): Promise<number> => {
  const { values, positionals } = parse(
    args,
    { ...helpOption, tracker: { type: "string" }, token: { type: "string" }, json: { type: "boolean" } },
    1
  )
  if (values.help) {
    process.stdout.write(statusHelp)
    return 0
  }
  const instanceId = positionals[0]
  if (instanceId === undefined) throw new UsageError("an instance id is required: taskfold status <instance-id>")
  const tracker = url(values.tracker, "--tracker")
  const client = httpTrackerClient({
    baseUrl: tracker,
    token: token(values.token),
    fetch: globalThis.fetch,
    timeoutMs: 15_000
  })
  const found = await runEffect(client.status(instanceId), describeClientError(tracker))
  process.stdout.write(values.json ? `${JSON.stringify(found)}\n` : `${describeStatus(found)}\n`)
  return 0
}
