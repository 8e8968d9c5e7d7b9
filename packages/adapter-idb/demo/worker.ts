import { serveWebWorker } from "@taskfold/core/wire"
import { wordCount } from "./wordcount.ts"

serveWebWorker({ jobs: [wordCount] })
