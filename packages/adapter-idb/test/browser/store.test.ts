import { taskStoreConformance } from "@taskfold/core/testing"
import { openIdbStore } from "../../src/index.ts"

let databases = 0
const run = Date.now()
taskStoreConformance("IndexedDB (Chromium)", () => openIdbStore({ name: `conformance-${run}-${++databases}` }))
