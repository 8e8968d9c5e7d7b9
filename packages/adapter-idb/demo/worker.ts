import { serveWebWorker } from "../src/web-worker.ts"
import { wordCount } from "./wordcount.ts"

serveWebWorker({ jobs: [wordCount] })
