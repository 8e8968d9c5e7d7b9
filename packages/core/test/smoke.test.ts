import { describe, expect, it } from "vitest"
import { createInstance } from "../src/machine/instance.ts"
import { step } from "../src/machine/step.ts"
import { resolveConfigSync } from "../src/model/config.ts"

describe("machine", () => {
  it("creates the root task and writes it in the first step", () => {
    const state = createInstance(
      {
        instanceId: "i1",
        job: "j",
        kind: "mapReduce",
        config: resolveConfigSync({}),
        params: "{}",
        localWorkerId: "local",
        seed: 1
      },
      0
    )
    const out = step(state, [], 0)
    expect(out.write?.inserts.map((row) => row.id)).toEqual(["0"])
  })
})
