import { Worker } from "node:worker_threads"
const t = performance.now()
const w = new Worker(new URL("../packages/adapter-node/src/threads/thread.ts", import.meta.url), { workerData: { modules: [new URL("../examples/primes.ts", import.meta.url).pathname] } })
w.on("online", () => console.log("online", (performance.now() - t).toFixed(0)))
w.on("message", (m) => { console.log("msg", (performance.now() - t).toFixed(0), JSON.stringify(m).slice(0, 200)); void w.terminate() })
w.postMessage([{ type: "run", id: 1, run: { instanceId: "i", job: "prime-count", task: { id: "0.1", name: "block", kind: 3, body: JSON.stringify({ from: 0, to: 1000 }), attempt: 0 }, params: "{}", context: {}, maxResultBytes: undefined } }])
