import { describeError, RejectedError, TransportError, type Outcome } from "@taskfold/core"
import type { ClientError } from "@taskfold/core/wire"
import { Cause, Effect, Exit, Fiber } from "effect"
import { CommandError } from "./args.ts"

/** Runs an Effect; its failure becomes a CommandError with the error's message (no stack). */
export const runEffect = async <A, E>(
  effect: Effect.Effect<A, E>,
  describe: (error: E) => string = messageOf
): Promise<A> => {
  const exit = await Effect.runPromiseExit(effect)
  if (Exit.isSuccess(exit)) return exit.value
  const failure = exit.cause.reasons.find(Cause.isFailReason)
  if (failure !== undefined) throw new CommandError(describe(failure.error))
  throw new CommandError(messageOf(Cause.squash(exit.cause)))
}

export const messageOf = (error: unknown): string =>
  error instanceof Error
    ? error.message
    : typeof error === "object" && error !== null && "message" in error
      ? String(error.message)
      : String(error)

/** A client error in words a user can act on. */
export const describeClientError =
  (tracker: string) =>
  (error: ClientError): string => {
    if (error instanceof TransportError) {
      if (error.reason === "unreachable" || error.reason === "timeout")
        return `cannot reach the tracker at ${tracker}: ${error.message}`
      return `the tracker at ${tracker} refused the request: ${error.message}`
    }
    if (error instanceof RejectedError && error.reason === "unknown-instance") return error.message
    return `the tracker at ${tracker} refused the request: ${error.message}`
  }

/** The outcome as the one JSON line `run` and `submit --wait` print on stdout. */
export const outcomeLine = (instanceId: string, outcome: Outcome): string => {
  let result: unknown = outcome.result
  try {
    result = JSON.parse(outcome.result)
  } catch {
    // Not JSON (a failure's message, a counts line): the text itself.
  }
  return JSON.stringify({
    instanceId,
    ok: outcome.ok,
    result,
    finishedAt: outcome.finishedAt,
    counts: outcome.counts,
    errors: outcome.errors
  })
}

/**
 * The outcome in words for stderr (R-FIN-8): the counts and, when tasks failed, each reported failure with
 * its task, name, attempt and error, so a failed task is never shown only as a number.
 */
export const outcomeSummary = (outcome: Outcome): string => {
  const { created, succeeded, failed } = outcome.counts
  const lines = [`${outcome.ok ? "succeeded" : "failed"}: ${created} tasks, ${succeeded} succeeded, ${failed} failed`]
  for (const error of outcome.errors)
    lines.push(`  task ${error.taskId} (${error.name}, attempt ${error.attempt}): ${describeError(error.error)}`)
  if (failed > outcome.errors.length) lines.push(`  … and ${failed - outcome.errors.length} more failed tasks`)
  if (!outcome.ok) lines.push(`  ${outcome.result.length > 500 ? `${outcome.result.slice(0, 500)}…` : outcome.result}`)
  return `${lines.join("\n")}\n`
}

/**
 * Runs a scoped service (a tracker server, a worker process) until SIGINT or SIGTERM, then closes its
 * scope so it stops listening and releases what it holds. Resolves with the setup's failure, if any.
 */
export const runUntilSignal = <E>(
  service: Effect.Effect<unknown, E, never>,
  describe: (error: E) => string
): Promise<number> =>
  new Promise((resolve, reject) => {
    const fiber = Effect.runFork(service)
    const stop = () => {
      process.off("SIGINT", stop)
      process.off("SIGTERM", stop)
      void Effect.runPromise(Fiber.interrupt(fiber)).then(() => resolve(0))
    }
    process.on("SIGINT", stop)
    process.on("SIGTERM", stop)
    fiber.addObserver((exit) => {
      if (Exit.isSuccess(exit) || Exit.hasInterrupts(exit)) return
      process.off("SIGINT", stop)
      process.off("SIGTERM", stop)
      const failure = exit.cause.reasons.find(Cause.isFailReason)
      reject(
        new CommandError(failure !== undefined ? describe(failure.error as E) : messageOf(Cause.squash(exit.cause)))
      )
    })
  })
