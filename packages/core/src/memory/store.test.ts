import { makeMemoryStore } from "./store.ts"
import { taskStoreConformance } from "../testing/index.ts"

taskStoreConformance("memory", () => makeMemoryStore())
