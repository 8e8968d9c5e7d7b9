import { runJob } from "@taskfold/core"
import { threadPool } from "@taskfold/node"
import { fileURLToPath } from "node:url"
const mod = fileURLToPath(new URL("./jobs/noop.ts", import.meta.url))
const { benchNoop } = await import(mod)
const pool = threadPool({ modules: [mod], threads: 1 })
await pool.ready()
const t = performance.now()
const r = await runJob(benchNoop, { params: { n: 200000 }, config: { localWorker: "include" }, executor: pool })
console.log(r.ok, ((performance.now() - t) / 1000).toFixed(2), "s")
await pool.close()
