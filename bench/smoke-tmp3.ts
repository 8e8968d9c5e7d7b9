import { runJob } from "@taskfold/core"
import { threadPool } from "@taskfold/node"
import { fileURLToPath } from "node:url"
const mod = fileURLToPath(new URL("./jobs/noop.ts", import.meta.url))
const { benchNoop: noop } = await import(mod)
const n = 100_000
for (const threads of [0, 1, 2]) {
  const pool = threads === 0 ? undefined : threadPool({ modules: [mod], threads })
  await pool?.ready()
  const t = performance.now()
  const r = await runJob(noop, { params: { n }, config: { localWorker: "include" }, ...(pool ? { executor: pool } : {}) })
  console.log(threads, r.ok, JSON.stringify(r.result).slice(0, 80), ((performance.now() - t) / 1000).toFixed(2), "s")
  await pool?.close()
}
