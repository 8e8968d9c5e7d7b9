import type { Job } from "@taskfold/core"
import type { Port, WorkerLike } from "@taskfold/core/wire"
import { serveWebWorker } from "@taskfold/core/wire"

/**
 * A stand-in for a Web Worker in Node: the same worker-side code (serveWebWorker) on one end of a
 * MessageChannel, the page's transport on the other. Messages are structured-cloned and bodies
 * transferred exactly as between a page and its workers; only the thread is shared.
 */
export const messageChannelWorker = (jobs: ReadonlyArray<Job>) => (): WorkerLike & { readonly port: MessagePort } => {
  const { port1, port2 } = new MessageChannel()
  const served = serveWebWorker({ jobs }, port2 as Port)
  let terminated = false
  const worker = {
    port: port1,
    postMessage: (message: unknown, options?: StructuredSerializeOptions) => {
      if (!terminated) port1.postMessage(message, options)
    },
    addEventListener: (type: string, listener: (event: MessageEvent) => void) =>
      port1.addEventListener(type, listener as EventListener),
    start: () => port1.start(),
    terminate: () => {
      if (terminated) return
      terminated = true
      served.close()
      port1.close()
      port2.close()
    }
  }
  return worker as WorkerLike & { readonly port: MessagePort }
}
