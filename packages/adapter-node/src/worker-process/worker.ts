import {
  type ClientError,
  credentialWorkerId,
  type RunningWorker,
  startHttpWorker,
  type HttpWorkerOptions
} from "@taskfold/core/wire"
import { Effect, type Scope } from "effect"
import { randomBytes } from "node:crypto"
import { hostname } from "node:os"
import { listen, type ListenError } from "../http.ts"

export interface WorkerProcessOptions extends Omit<HttpWorkerOptions<ListenError>, "id" | "listen"> {
  /** Default: the one the credential names, else host name, process id and a random suffix. */
  readonly id?: string
  /** Where this worker listens for task batches; 0 (default) picks a free port. */
  readonly port?: number
  /** The address to bind; 127.0.0.1 by default. */
  readonly host?: string
  /** The URL the tracker reaches this worker at, when it is not the one it listens on (a proxy, NAT). */
  readonly advertise?: string
}

export const defaultWorkerId = (): string => `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`

/** Core's HTTP worker process, listening on 127.0.0.1 with Node's HTTP server. */
export const startWorkerProcess = (
  options: WorkerProcessOptions
): Effect.Effect<RunningWorker, ListenError | ClientError, Scope.Scope> =>
  startHttpWorker({
    ...options,
    id: options.id ?? credentialWorkerId(options.token) ?? defaultWorkerId(),
    listen: (fetch) =>
      listen(fetch, options.port ?? 0, options.host).pipe(
        Effect.map((listening) => (options.advertise === undefined ? listening : { url: options.advertise }))
      )
  })
