import { credentialWorkerId, secretProblem, workerCredential } from "@taskfold/core/wire"
import { defaultWorkerId, loadJobs, scopedThreadPool, startWorkerProcess } from "@taskfold/node"
import { Effect } from "effect"
import { helpOption, integer, parse, port, required, threads, token, url, UsageError } from "./args.ts"
import { describeClientError, messageOf, runUntilSignal } from "./common.ts"

export const workerHelp = `Usage: taskfold worker --tracker URL --token T --jobs <module or folder> [options]

Runs a worker process: it listens on 127.0.0.1, registers with the tracker server (and renews that,
so a restarted server finds it again), joins the server's live instances of the jobs it knows, and
runs their tasks.

Options:
  --tracker URL    the tracker server, e.g. http://127.0.0.1:7070
  --token T        this worker's credential (taskfold credential --worker ID prints one), or the
                   tracker's secret, from which the worker makes its own: then this process holds
                   the secret (or TASKFOLD_TOKEN)
  --jobs PATH      a job module, or a folder of them; may be repeated
  --slots N        tasks run at once (default 16)
  --threads N      worker threads the tasks run on (default: one per core), so CPU-bound work never
                   holds up receipts and heartbeats; 0 runs them in the main thread
  --id ID          the worker's id (default: the credential's, else host name, process id and a
                   random suffix)
  --port P         the port to listen on (default 0: any free port)
  --host H         the address to listen on (default 127.0.0.1)
  --advertise URL  the URL the tracker reaches this worker at, if not the one it listens on
  -h, --help       this text
`

export const worker = async (args: ReadonlyArray<string>): Promise<number> => {
  const { values } = parse(
    args,
    {
      ...helpOption,
      tracker: { type: "string" },
      token: { type: "string" },
      jobs: { type: "string", multiple: true },
      slots: { type: "string" },
      threads: { type: "string" },
      id: { type: "string" },
      port: { type: "string" },
      host: { type: "string" },
      advertise: { type: "string" }
    },
    0
  )
  if (values.help) {
    process.stdout.write(workerHelp)
    return 0
  }
  const tracker = url(values.tracker, "--tracker")
  const secret = token(values.token)
  const jobPaths = values.jobs ?? []
  if (jobPaths.length === 0) required(undefined, "--jobs")
  const slots = integer(values.slots, "--slots", 16)
  const threadCount = threads(values.threads)
  const listenPort = port(values.port, "--port", 0)
  const advertise = values.advertise === undefined ? undefined : url(values.advertise, "--advertise")
  if (values.id !== undefined && (values.id.length === 0 || values.id.length > 200))
    required(undefined, "--id (1 to 200 characters)")
  // A credential names its worker; with the secret instead, the worker makes the credential of its id.
  const named = credentialWorkerId(secret)
  if (named !== undefined && values.id !== undefined && values.id !== named)
    throw new UsageError(`--id ${values.id}: the credential is worker ${named}'s`)
  const weak = named === undefined ? secretProblem(secret) : undefined
  if (weak !== undefined) throw new UsageError(`--token: ${weak}`)
  const id = named ?? values.id ?? defaultWorkerId()
  const credential = named === undefined ? await workerCredential(secret, id) : secret
  const jobs = await loadJobs(jobPaths)
  const log = (line: string) => process.stderr.write(`${line}\n`)
  const describe = describeClientError(tracker)
  return runUntilSignal(
    Effect.scoped(
      Effect.gen(function* () {
        // Bodies arrive over HTTP, so nothing else holds them: they move to the threads uncopied.
        const executor = yield* scopedThreadPool(threadCount, { modules: jobPaths, transferBodies: true })
        yield* startWorkerProcess({
          tracker,
          token: credential,
          id,
          jobs,
          slots,
          port: listenPort,
          ...(values.host === undefined ? {} : { host: values.host }),
          ...(advertise === undefined ? {} : { advertise }),
          log,
          ...(executor === undefined ? {} : { executor })
        })
        return yield* Effect.never
      })
    ),
    (error) => (error._tag === "ListenError" ? messageOf(error) : describe(error))
  )
}
