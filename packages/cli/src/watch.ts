import { RejectedError, TransportError, type Outcome } from "@taskfold/core"
import type { httpTrackerClient, InstanceStatus } from "@taskfold/core/wire"
import { Effect, Exit } from "effect"
import { CommandError } from "./args.ts"
import { describeClientError } from "./common.ts"
import { progressView } from "./progress.ts"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Shows an instance's progress on stderr until it has an outcome, and answers it: bars redrawn in place on a
 * terminal, plain lines without escape codes otherwise. A tracker out of reach is waited for `patienceMs`.
 */
export const watchUntilOutcome = async (
  client: ReturnType<typeof httpTrackerClient>,
  tracker: string,
  instanceId: string,
  patienceMs: number
): Promise<Outcome> => {
  const describe = describeClientError(tracker)

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
  return outcome
}
