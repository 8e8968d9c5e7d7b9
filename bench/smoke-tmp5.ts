import { runJob } from "@taskfold/core"
import { threadPool } from "@taskfold/node"
import { Worker } from "node:worker_threads"
import { fileURLToPath } from "node:url"
let calls = 0, msgs = 0, recv = 0
const orig = Worker.prototype.postMessage
Worker.prototype.postMessage = function (this: Worker, m: unknown, t?: any) { calls++; msgs += Array.isArray(m) ? m.length : 1; return orig.call(this, m, t) }
const mod = fileURLToPath(new URL("./jobs/noop.ts", import.meta.url))
const { benchNoop } = await import(mod)
const pool = threadPool({ modules: [mod], threads: 1 })
await pool.ready()
const t = performance.now()
const r = await runJob(benchNoop, { params: { n: 200000 }, config: { localWorker: "include" }, executor: pool })
console.log(r.ok, ((performance.now() - t) / 1000).toFixed(2), "s", { calls, msgs, per: msgs / calls })
await pool.close()
