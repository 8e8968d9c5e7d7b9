import { httpTrackerClient } from "@taskfold/core/wire"
import { helpOption, integer, parse, token, UsageError, url } from "./args.ts"
import { describeClientError, runEffect } from "./common.ts"
import { describeStatus } from "./progress.ts"
import { watchUntilOutcome } from "./watch.ts"

export const statusHelp = `Usage: taskfold status <instance-id> --tracker URL --token T [--json] [--watch]

Shows an instance's progress per task name and per worker, and its outcome once it has one. Finished
instances are answered too. Exits 0 if the tracker knows the instance, 1 otherwise. With --watch it
shows the progress live on stderr (bars on a terminal, plain lines otherwise) until the instance ends,
then its status, and exits 0 if it succeeded, 1 if it failed.

Options:
  --tracker URL    the tracker server, e.g. http://127.0.0.1:7070
  --token T        the shared secret (or TASKFOLD_TOKEN)
  --json           print the status as one JSON line
  --watch          follow the instance until it ends
  --patience SECS  with --watch, how long the tracker may stay unreachable (default 120)
  -h, --help       this text
`

export const status = async (args: ReadonlyArray<string>): Promise<number> => {
  const { values, positionals } = parse(
    args,
    {
      ...helpOption,
      tracker: { type: "string" },
      token: { type: "string" },
      json: { type: "boolean" },
      watch: { type: "boolean" },
      patience: { type: "string" }
    },
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
  const patienceMs = integer(values.patience, "--patience", 120) * 1000
  const outcome = values.watch ? await watchUntilOutcome(client, tracker, instanceId, patienceMs) : undefined
  const found = await runEffect(client.status(instanceId), describeClientError(tracker))
  process.stdout.write(values.json ? `${JSON.stringify(found)}\n` : `${describeStatus(found)}\n`)
  return outcome === undefined || outcome.ok ? 0 : 1
}
