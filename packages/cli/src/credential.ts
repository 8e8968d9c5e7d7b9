import { workerCredential } from "@taskfold/core/wire"
import { helpOption, parse, required, token } from "./args.ts"

export const credentialHelp = `Usage: taskfold credential --worker ID --token SECRET

Prints the credential of worker ID under the tracker's secret. Give it to that worker's process
(taskfold worker --token CREDENTIAL): it registers, heartbeats, pulls and reports as worker ID only,
and submits, reads or kills nothing. The secret itself stays with the tracker and its operators.

Options:
  --worker ID      the worker's id (1 to 200 characters)
  --token SECRET   the tracker's secret (or TASKFOLD_TOKEN)
  -h, --help       this text
`

export const credential = async (args: ReadonlyArray<string>): Promise<number> => {
  const { values } = parse(args, { ...helpOption, worker: { type: "string" }, token: { type: "string" } }, 0)
  if (values.help) {
    process.stdout.write(credentialHelp)
    return 0
  }
  const id = required(values.worker, "--worker")
  if (id.length > 200) required(undefined, "--worker (1 to 200 characters)")
  process.stdout.write(`${await workerCredential(token(values.token), id)}\n`)
  return 0
}
