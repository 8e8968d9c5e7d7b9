import { runJob } from "@taskfold/core"
import { runJobModule } from "@taskfold/node"
import { primeCount } from "../examples/primes.ts"
const params = { upTo: Number(process.argv[2]), ranges: Number(process.argv[3]), blocksPerRange: Number(process.argv[4]) }
let t = performance.now()
let r = await runJob(primeCount, { params })
console.log("inthread", r.ok, JSON.stringify(r.result), ((performance.now() - t) / 1000).toFixed(2))
for (const threads of [1, 2, 1, 2]) {
  t = performance.now()
  r = await runJobModule("examples/primes.ts", { threads, params })
  console.log(threads, r.ok, JSON.stringify(r.result), ((performance.now() - t) / 1000).toFixed(2))
}
