import { it } from "vitest"
import { readFileSync } from "node:fs"
import { runScenario } from "./harness.ts"
it("replay", async () => {
  const s = JSON.parse(readFileSync(process.env["SCEN"] ?? "/tmp/sim/s.json", "utf8"))
  const r = await runScenario(s, (line) => console.log(line))
  console.log(JSON.stringify({ deliveries: r.deliveries, trace: r.trace, starts: r.log.starts, progress: r.progress, live: r.liveRows, stats: [...r.networkStats] }, null, 1))
})
