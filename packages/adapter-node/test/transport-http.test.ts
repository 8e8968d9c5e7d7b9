import { createHmac } from "node:crypto"
import { RejectedError, TransportError } from "@taskfold/core"
import type { Tracker } from "@taskfold/core/adapter"
import {
  conformanceWorker,
  transportConformance,
  type ConformanceWorker,
  type DeliveredOutcome,
  type TransportFixture
} from "@taskfold/core/testing"
import { httpTrackerLink, httpWorkerTransport, makeTrackerApp, makeWorkerApp } from "@taskfold/core/wire"
import { Effect, Exit, Scope } from "effect"
import { listen } from "../src/http.ts"

const TOKEN = "conformance-secret"
/** The workers' body limit: a batch over it answers 413. */
const MAX_BODY_BYTES = 4 * 1024 * 1024

/** Serves `fetch` on 127.0.0.1 (any free port) until the scope closes. */
const serve = (fetch: (request: Request) => Response | Promise<Response>, scope: Scope.Closeable) =>
  Effect.runPromise(listen(fetch, 0).pipe(Scope.provide(scope)))

/**
 * Core's HTTP transport (httpWorkerTransport to makeWorkerApp) and its worker → tracker link (httpTrackerLink
 * to makeTrackerApp), each worker and the tracker on a real @hono/node-server on 127.0.0.1.
 */
const httpFixture = async (): Promise<TransportFixture> => {
  const servers: Scope.Closeable[] = []
  const scopeOf = () => {
    const scope = Effect.runSync(Scope.make())
    servers.push(scope)
    return scope
  }
  const workers = new Map<string, { readonly handle: ConformanceWorker; readonly scope: Scope.Closeable }>()
  const urls = new Map<string, string>()
  const delivered: DeliveredOutcome[] = []
  const refusing = new Set<string>()
  const trackers = new Map<string, Tracker>()
  let next = 0

  const trackerApp = makeTrackerApp(
    {
      tracker: (instanceId) =>
        Effect.suspend(() => {
          const found = trackers.get(instanceId)
          return found === undefined
            ? Effect.fail(new RejectedError({ reason: "unknown-instance", message: `no instance ${instanceId}` }))
            : Effect.succeed(found)
        }),
      submit: () => Effect.fail(new RejectedError({ reason: "bad-input", message: "no submits here" }))
    },
    { token: TOKEN }
  )
  const tracker = await serve(trackerApp.fetch, scopeOf())

  const transport = httpWorkerTransport({
    fetch: (input, init) => fetch(input, init),
    timeoutMs: 5_000,
    workerAddress: (workerId) => {
      const url = urls.get(workerId)
      return url === undefined ? undefined : { url, key: TOKEN }
    },
    // The HTTP transport hands outcomes to whatever the host gives it; here, an owner that records them.
    deliverOutcome: (instanceId, outcome) =>
      Effect.suspend(() => {
        if (refusing.has(instanceId))
          return Effect.fail(new TransportError({ reason: "rejected", message: `the owner of ${instanceId} refused` }))
        delivered.push({ instanceId, outcome })
        return Effect.void
      })
  })

  return {
    transport,
    workers: (count) =>
      Promise.all(
        Array.from({ length: count }, async () => {
          const handle = conformanceWorker(`http-${next++}`)
          const scope = scopeOf()
          const listening = await serve(
            makeWorkerApp(handle, { token: TOKEN, maxBodyBytes: MAX_BODY_BYTES }).fetch,
            scope
          )
          workers.set(handle.id, { handle, scope })
          urls.set(handle.id, listening.url)
          return handle.id
        })
      ),
    received: async (workerId) => workers.get(workerId)?.handle.received() ?? { batches: [], stops: [] },
    outcomes: async () => [...delivered],
    refuseOutcomes: async (instanceId) => void refusing.add(instanceId),
    // The process is gone, its address stays where the tracker noted it.
    removeWorker: async (workerId) => {
      const scope = workers.get(workerId)?.scope
      if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
    },
    close: async () => {
      for (const scope of servers.splice(0)) await Effect.runPromise(Scope.close(scope, Exit.void))
    },
    link: {
      addTracker: async (found) => void trackers.set(found.instanceId, found),
      connect: (workerId, instanceId) =>
        httpTrackerLink({
          baseUrl: tracker.url,
          token: credentialOf(workerId),
          fetch: (input, init) => fetch(input, init)
        })(instanceId)
    }
  }
}

/** A worker's credential (R-WIRE-4), made here with node:crypto as the format says: tfw1.<id>.<HMAC-SHA256>. */
const credentialOf = (workerId: string): string =>
  `tfw1.${Buffer.from(workerId).toString("base64url")}.${createHmac("sha256", TOKEN)
    .update(`worker:${workerId}`)
    .digest("base64url")}`

transportConformance("HTTP (httpWorkerTransport, makeWorkerApp, @hono/node-server)", httpFixture, {
  maxMessageBytes: MAX_BODY_BYTES
})
