import { Context, Effect, Layer, Schema } from "effect"
import { describe, expect, expectTypeOf, it } from "vitest"
import { ConfigError, defineJob, runJob } from "../src/index.ts"
import { makeMemoryStore, makeTrackerHost } from "../src/adapter.ts"

const sum = defineJob({
  name: "typed-sum",
  kind: "mapReduce",
  params: Schema.Struct({ n: Schema.Int }),
  tasks: { add: Schema.Number },
  process: async (task, ctx) => {
    if (task.isRoot) {
      expectTypeOf(ctx.params).toEqualTypeOf<{ readonly n: number }>()
      expectTypeOf(task.body).toEqualTypeOf<{ readonly n: number }>()
      // @ts-expect-error an "add" task's body is a number
      void (() => ctx.map(["1"], "add"))
      // @ts-expect-error the job declares no task "sub"
      void (() => ctx.map([1], "sub"))
      return ctx.map(
        Array.from({ length: ctx.params.n }, (_, i) => i + 1),
        "add"
      )
    }
    expectTypeOf(task.name).toEqualTypeOf<"add">()
    expectTypeOf(task.body).toEqualTypeOf<number>()
    return task.body * 10
  },
  reduce: async (results) => {
    let total = 0
    for await (const result of results) {
      if (!result.ok) continue
      expectTypeOf(result.result).toEqualTypeOf<number>()
      if (result.name === "add") total += result.result
    }
    return total
  }
})

/** A service an Effect processor needs, and a layer that counts how often it is built. */
interface Scale {
  readonly factor: number
}
const Scale = Context.Service<Scale>("Scale")
let built = 0
const ScaleLayer = Layer.effect(Scale)(
  Effect.sync(() => {
    built++
    return { factor: 3 }
  })
)

const scaled = defineJob({
  name: "typed-scaled",
  kind: "mapReduce",
  layer: ScaleLayer,
  tasks: { part: Schema.Number },
  process: (task, ctx) =>
    task.isRoot
      ? Effect.promise(() => ctx.map([1, 2, 3, 4, 5, 6, 7, 8], "part"))
      : Effect.gen(function* () {
          const scale = yield* Scale
          return task.body * scale.factor
        }),
  reduce: async (results) => {
    let total = 0
    for await (const result of results) if (result.ok && result.name === "part") total += result.result
    return total
  }
})

describe("typed jobs", () => {
  it("a job's params, bodies by task name and results are typed without casts, and it runs", async () => {
    const run = await runJob(sum, { params: { n: 10 }, workers: 2 })
    expect(run).toMatchObject({ ok: true, result: 550 })
  })

  it("params that do not match the job's schema start nothing: runJob fails with a ConfigError, submit is refused", async () => {
    const failed = await runJob(sum, { params: { n: "ten" } }).then(
      () => undefined,
      (error: unknown) => error
    )
    expect(failed).toBeInstanceOf(ConfigError)
    expect((failed as ConfigError).message).toMatch(/params of job typed-sum do not match its schema/)
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const store = makeMemoryStore()
          const host = yield* makeTrackerHost({ jobs: [sum], store })
          const refused = yield* Effect.flip(host.submit({ job: "typed-sum", params: { m: 1 } }))
          expect(refused).toMatchObject({ _tag: "RejectedError", reason: "bad-input" })
          expect(store.instances.size).toBe(0)
        })
      )
    )
  })

  it("items that do not match their task name's schema fail the mapping task with a clear error", async () => {
    const lying = defineJob({
      name: "typed-lying",
      kind: "map",
      tasks: { add: Schema.Number },
      config: { taskRetries: 0 },
      process: async (task, ctx) => (task.isRoot ? ctx.map(["one"] as never, "add") : task.body)
    })
    const run = await runJob(lying)
    expect(run.ok).toBe(false)
    expect(run.outcome.errors[0]?.error.message).toMatch(/items for task "add" do not match its schema/)
  })

  it("an Effect processor gets its services from the job's layer, built once per worker", async () => {
    built = 0
    const run = await runJob(scaled, { workers: 3 })
    expect(run).toMatchObject({ ok: true, result: 108 })
    expect(built).toBeGreaterThanOrEqual(1)
    expect(built).toBeLessThanOrEqual(3)
  })

  it("a layer that fails to build fails the tasks that need it, with the reason", async () => {
    const broken = defineJob({
      name: "typed-broken",
      kind: "standalone",
      config: { taskRetries: 0 },
      layer: Layer.effect(Scale)(Effect.fail(new Error("no scale today"))),
      process: () => Effect.map(Effect.service(Scale), (scale) => scale.factor)
    })
    const run = await runJob(broken)
    expect(run.ok).toBe(false)
    expect(JSON.stringify(run.outcome)).toMatch(/the layer of job typed-broken failed to build/)
  })

  it("an Effect processor that needs a service without a layer providing it is a type error", () => {
    const define = () =>
      // @ts-expect-error Scale is not provided: the job needs `layer`
      defineJob({ name: "typed-missing", kind: "standalone", process: () => Effect.service(Scale) })
    const wrongLayer = () =>
      defineJob({
        name: "typed-wrong",
        // @ts-expect-error this layer provides nothing the processor needs (reported at the kind)
        kind: "standalone",
        layer: Layer.empty,
        process: () => Effect.service(Scale)
      })
    expect(typeof define).toBe("function")
    expect(typeof wrongLayer).toBe("function")
  })
})
