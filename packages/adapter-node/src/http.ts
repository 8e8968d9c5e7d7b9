import { createAdaptorServer } from "@hono/node-server"
import { Effect, Schema, type Scope } from "effect"
import type { Server } from "node:http"
import type { AddressInfo } from "node:net"

/** A server could not listen: the port is taken, or not ours to take. */
export class ListenError extends Schema.TaggedError<ListenError>()("ListenError", {
  message: Schema.String
}) {}

export interface Listening {
  readonly url: string
  readonly port: number
}

/** Whether an address is this machine's own loopback (127.0.0.0/8, ::1, localhost). */
export const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)

/**
 * Serves `fetch` on `host` (127.0.0.1 unless given; port 0: any free port) while the scope lives. Closing the
 * scope stops listening and drops open connections, so a test or a CLI ends promptly.
 */
export const listen = (
  fetch: (request: Request) => Response | Promise<Response>,
  port: number,
  host = "127.0.0.1"
): Effect.Effect<Listening, ListenError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<{ server: Server; listening: Listening }, ListenError>((resume) => {
      const server = createAdaptorServer({ fetch, hostname: host }) as Server
      // Keep-alive connections between tracker and workers are reused batch after batch; an idle one closes
      // after 65 s. A peer that sends its headers or its request slowly is cut off (R-WIRE-3): headers
      // within 10 s, the whole request within 60 s (a map call held by back-pressure answers within 10 s).
      server.keepAliveTimeout = 65_000
      server.headersTimeout = 10_000
      server.requestTimeout = 60_000
      const onError = (error: NodeJS.ErrnoException) => {
        const why =
          error.code === "EADDRINUSE"
            ? `port ${port} is in use`
            : error.code === "EACCES"
              ? `port ${port} is not allowed`
              : error.message
        resume(Effect.fail(new ListenError({ message: `cannot listen on ${host}:${port}: ${why}` })))
      }
      server.once("error", onError)
      server.listen(port, host, () => {
        server.off("error", onError)
        const address = server.address() as AddressInfo
        const shown = host.includes(":") ? `[${host}]` : host
        resume(Effect.succeed({ server, listening: { url: `http://${shown}:${address.port}`, port: address.port } }))
      })
    }),
    ({ server }) =>
      Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  ).pipe(Effect.map(({ listening }) => listening))
