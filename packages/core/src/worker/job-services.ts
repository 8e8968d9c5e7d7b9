import { type Context, Effect, Exit, Layer, type Scope } from "effect"
import type { Job } from "../model/job.ts"
import type { EffectRunner } from "./execute.ts"

/** Why a job's layer could not give its Effect processors their services: the tasks fail with it. */
export class JobLayerError extends Error {
  override readonly name = "JobLayerError"
}

const never = new AbortController().signal

/**
 * The services of each job's `layer`, built once per worker (the first task that needs them waits for it) in
 * the worker's scope, so they live as long as the worker and are released with it. `runnerOf(job)` runs a
 * processor's Effect with them; a job without a layer runs with the worker's own services.
 */
export const makeJobServices = (scope: Scope.Scope, run: EffectRunner) => {
  const built = new Map<Job, Promise<Exit.Exit<Context.Context<unknown>, unknown>>>()
  const contextOf = (job: Job, layer: Layer.Layer<never, unknown, never>) => {
    let context = built.get(job)
    if (context === undefined) {
      context = run(Layer.buildWithScope(layer, scope), { signal: never }) as Promise<
        Exit.Exit<Context.Context<unknown>, unknown>
      >
      built.set(job, context)
    }
    return context
  }
  const runnerOf = (job: Job): EffectRunner => {
    const layer = job.layer
    if (layer === undefined) return run
    return async (effect, options) => {
      const context = await contextOf(job, layer)
      if (Exit.isFailure(context)) {
        const why = new JobLayerError(`the layer of job ${job.name} failed to build`, { cause: context.cause })
        return Exit.fail(why)
      }
      return run(Effect.provideContext(effect, context.value), options)
    }
  }
  return { runnerOf }
}
