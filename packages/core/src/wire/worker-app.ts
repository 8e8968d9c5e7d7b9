import { Effect } from "effect"
import type { Hono } from "hono"
import { StopMessage, TaskBatch } from "../model/messages.ts"
import type { WorkerHandle } from "../worker/runtime.ts"
import { Invite } from "./protocol.ts"
import { answer, guardedApp, readMessage, type AppOptions } from "./tracker-app.ts"

/** The worker side of the protocol: task batches and stops from trackers, invitations from hosts. */
export const makeWorkerApp = (worker: WorkerHandle, options: AppOptions): Hono => {
  const app = guardedApp(options)
  app.post("/v1/batches", async (c) => {
    const batch = await readMessage(c, TaskBatch)
    if (!batch.ok) return batch.response
    // Answered as soon as the batch is taken, before any of its tasks runs: the answer is the receipt (R-DISP-10).
    const refused = worker.deliver(batch.value)
    return answer(c, refused === undefined ? Effect.succeed({}) : Effect.fail(refused), 202)
  })
  app.post("/v1/stop", async (c) => {
    const message = await readMessage(c, StopMessage)
    return message.ok
      ? answer(c, Effect.sync(() => worker.stop(message.value)).pipe(Effect.as({})), 202)
      : message.response
  })
  app.post("/v1/invite", async (c) => {
    const invite = await readMessage(c, Invite)
    if (!invite.ok) return invite.response
    // Answered once the worker's own first heartbeat reached the tracker: the host then knows it (R-WORK-5).
    return answer(c, Effect.ignore(worker.join(invite.value.instanceId)).pipe(Effect.as({})), 202)
  })
  return app
}
