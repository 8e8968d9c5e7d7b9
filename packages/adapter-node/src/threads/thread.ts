/**
 * The entry of one pool thread (Node runs this .ts file by type stripping): imports the job modules and
 * serves the runs the pool sends with core's guest side of the executor protocol.
 */
import { serveExecutorPort } from "@taskfold/core/adapter"
import { parentPort, workerData } from "node:worker_threads"
import { loadJobs } from "../jobs.ts"

/** What a thread is started with. */
export interface ThreadData {
  /** Absolute paths of the job modules (or folders of them), as loadJobs takes them. */
  readonly modules: ReadonlyArray<string>
}

const parent = parentPort
if (parent === null) throw new Error("threads/thread.ts is the entry of a worker thread; it does not run on its own")

serveExecutorPort(
  { postMessage: (messages) => parent.postMessage(messages), onMessage: (listener) => parent.on("message", listener) },
  loadJobs((workerData as ThreadData).modules)
)
