import { JobLoadError } from "@taskfold/node"
import { CommandError, UsageError } from "./args.ts"
import { credential } from "./credential.ts"
import { kill } from "./kill.ts"
import { list } from "./list.ts"
import { run } from "./run.ts"
import { serve } from "./serve.ts"
import { status } from "./status.ts"
import { submit } from "./submit.ts"
import { worker } from "./worker.ts"

const help = `Usage: taskfold <command> [options]

Commands:
  run <job-module>       run one instance in this process (memory store, or SQLite with --db)
  serve                  run a tracker server
  worker                 run a worker process that registers with a tracker server
  submit <job-name>      start an instance on a tracker server (--wait: until its outcome)
  status <instance-id>   show an instance's progress and outcome
  list                   list the tracker's instances (running, then finished)
  kill <instance-id>     kill an instance (or one task of it, --task)
  credential             print a worker's credential under the tracker's secret

'taskfold <command> --help' describes a command's options.
`

const commands: Record<string, (args: ReadonlyArray<string>) => Promise<number>> = {
  run,
  serve,
  worker,
  submit,
  status,
  list,
  kill,
  credential
}

/** Runs the command line; every failure ends as one line on stderr and a non-zero exit code. */
const main = async (argv: ReadonlyArray<string>): Promise<number> => {
  const [verb, ...rest] = argv
  if (verb === undefined || verb === "--help" || verb === "-h" || verb === "help") {
    process.stdout.write(help)
    return verb === undefined ? 2 : 0
  }
  const command = commands[verb]
  if (command === undefined) {
    process.stderr.write(`taskfold: unknown command ${JSON.stringify(verb)}; try taskfold --help\n`)
    return 2
  }
  try {
    return await command(rest)
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`taskfold ${verb}: ${error.message} (taskfold ${verb} --help shows the options)\n`)
      return 2
    }
    const message =
      error instanceof CommandError || error instanceof JobLoadError || error instanceof Error
        ? error.message
        : String(error)
    process.stderr.write(`taskfold ${verb}: ${message.split("\n")[0]}\n`)
    return 1
  }
}

// A failure nobody awaited still ends as one line, never a stack trace.
const last = (error: unknown) => {
  process.stderr.write(`taskfold: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}\n`)
  process.exit(1)
}
process.on("uncaughtException", last)
process.on("unhandledRejection", last)

const code = await main(process.argv.slice(2))
process.exitCode = code
// Nothing is left to wait for once a command is done (open sockets of fetch's pool included).
process.exit(code)
