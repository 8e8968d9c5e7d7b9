import { DEFAULT_MAX_BODY_BYTES, secretProblem } from "@taskfold/core/wire"
import { isLoopback, loadJobs, scopedThreadPool, serveTracker } from "@taskfold/node"
import { Effect } from "effect"
import { helpOption, integer, parse, port, required, threads, token, UsageError } from "./args.ts"
import { messageOf, runUntilSignal } from "./common.ts"

export const serveHelp = `Usage: taskfold serve --port P --token T --jobs <module or folder> [options]

Runs a tracker server (on 127.0.0.1 unless --host says otherwise): instances are submitted to it by job name,
worker processes register with it, and its own worker runs every instance's root and final task. With --db,
tasks and outcomes live in a SQLite file and instances left in it are resumed on start.

Options:
  --port P          the port to listen on (0: any free port; the address is printed)
  --token T         the tracker's secret, 16 characters at least: the operator's credential, and what
                    worker credentials are made from (taskfold credential; or TASKFOLD_TOKEN)
  --previous-token T  a secret being rotated out, still accepted (as the operator's, and for worker
                    credentials made from it) until the server is restarted without it; may be repeated
                    (or TASKFOLD_PREVIOUS_TOKEN)
  --host H          the address to listen on (default 127.0.0.1); another than loopback is warned
                    about unless --tls-proxy says a TLS-terminating proxy is in front
  --tls-proxy       a TLS-terminating reverse proxy is in front of this server
  --jobs PATH       a job module, or a folder of them; may be repeated
  --db FILE         a SQLite database file (default: in memory, lost on exit)
  --local-slots N   slots of the server's own worker (default 4)
  --threads N       worker threads the server's own worker runs root, final and other tasks on
                    (default: one per core), so a CPU-bound reduce never stalls the tracker; 0 runs
                    them in the tracker's thread
  --max-body BYTES  larger request bodies are refused with 413 (default 8 MiB)
  --keep-outcomes N finished instances kept, with outcome, counts, errors and per-name summary, after
                    their tasks are deleted (default 10,000 in memory, 100,000 with --db)
  --keep-days D     and none finished more than D days ago (default: no age limit)
  -h, --help        this text
`

export const serve = async (args: ReadonlyArray<string>): Promise<number> => {
  const { values } = parse(
    args,
    {
      ...helpOption,
      port: { type: "string" },
      token: { type: "string" },
      jobs: { type: "string", multiple: true },
      db: { type: "string" },
      "local-slots": { type: "string" },
      threads: { type: "string" },
      "max-body": { type: "string" },
      host: { type: "string" },
      "tls-proxy": { type: "boolean" },
      "previous-token": { type: "string", multiple: true },
      "keep-outcomes": { type: "string" },
      "keep-days": { type: "string" }
    },
    0
  )
  if (values.help) {
    process.stdout.write(serveHelp)
    return 0
  }
  const listenPort = port(required(values.port, "--port"), "--port", 0)
  const secret = token(values.token)
  const jobPaths = values.jobs ?? []
  if (jobPaths.length === 0) required(undefined, "--jobs")
  const localSlots = integer(values["local-slots"], "--local-slots", 4)
  const threadCount = threads(values.threads)
  const maxBodyBytes = integer(values["max-body"], "--max-body", DEFAULT_MAX_BODY_BYTES)
  const keepOutcomes =
    values["keep-outcomes"] === undefined ? undefined : integer(values["keep-outcomes"], "--keep-outcomes", 1)
  const keepDays = values["keep-days"] === undefined ? undefined : integer(values["keep-days"], "--keep-days", 1)
  const outcomeRetention = {
    ...(keepOutcomes === undefined ? {} : { maxRecords: keepOutcomes }),
    ...(keepDays === undefined ? {} : { maxAgeMs: keepDays * 86_400_000 })
  }
  const weak = secretProblem(secret)
  if (weak !== undefined) throw new UsageError(`--token: ${weak}`)
  const fromEnv = process.env["TASKFOLD_PREVIOUS_TOKEN"]
  const previousTokens = [...(values["previous-token"] ?? []), ...(fromEnv ? [fromEnv] : [])]
  for (const previous of previousTokens) {
    const problem = secretProblem(previous)
    if (problem !== undefined) throw new UsageError(`--previous-token: ${problem}`)
  }
  const jobs = await loadJobs(jobPaths)
  const log = (line: string) => process.stderr.write(`${line}\n`)
  return runUntilSignal(
    Effect.scoped(
      Effect.gen(function* () {
        // The tracker hands the local worker bodies it keeps itself: the threads get copies.
        const executor = yield* scopedThreadPool(threadCount, { modules: jobPaths })
        const server = yield* serveTracker({
          port: listenPort,
          ...(values.host === undefined ? {} : { host: values.host }),
          token: secret,
          jobs,
          localSlots,
          maxBodyBytes,
          previousTokens,
          outcomeRetention,
          log,
          ...(executor === undefined ? {} : { executor }),
          ...(values.db === undefined ? {} : { db: values.db })
        })
        if (values.host !== undefined && !isLoopback(values.host) && values["tls-proxy"] !== true)
          log(
            `warning: listening on ${values.host}, not loopback: credentials and tasks cross the network in clear ` +
              "text unless a TLS-terminating proxy is in front (say so with --tls-proxy)"
          )
        log(`tracker listening on ${server.url} (jobs ${[...jobs.keys()].join(", ")}; store ${values.db ?? "memory"})`)
        return yield* Effect.never
      })
    ),
    messageOf
  )
}
