import { Effect } from "effect"
import type { Hono } from "hono"
import { StopMessage, TaskBatch } from "../model/messages.ts"
import type { WorkerHandle } from "../worker/runtime.ts"
import { answer, guardedApp, readMessage, type AppOptions } from "./tracker-app.ts"

/** The worker side of the protocol: task batches and stops from trackers. */
export const makeWorkerApp = (worker: WorkerHandle, options: AppOptions): Hono => {
  const app = guardedApp(options)
  app.post("/v1/batches", async (c) => {
    const batch = await readMessage(c, TaskBatch)
    return batch.ok ? answer(c, Effect.sync(() => worker.deliver(batch.value)).pipe(Effect.as({})), 202) : batch.response
  })
  app.post("/v1/stop", async (c) => {
    const message = await readMessage(c, StopMessage)
    return message.ok ? answer(c, Effect.sync(() => worker.stop(message.value)).pipe(Effect.as({})), 202) : message.response
  })
  return app
}
