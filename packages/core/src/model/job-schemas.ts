import { Effect, Schema } from "effect"
import type { Job } from "./job.ts"

type Check = (value: unknown) => string | undefined

const makeCheck = (schema: Schema.Top): Check => {
  const decode = Schema.decodeUnknownEffect(schema as unknown as Schema.Codec<unknown, unknown, never, never>)
  return (value) => {
    const result = Effect.runSync(Effect.result(decode(value, { errors: "first" })))
    return result._tag === "Failure" ? result.failure.message.split("\n").join(" ") : undefined
  }
}

/** Checks made once per schema: a map call of many items is one decode of the array, not one per item. */
const valueChecks = new WeakMap<Schema.Top, Check>()
const arrayChecks = new WeakMap<Schema.Top, Check>()

const cached = (table: WeakMap<Schema.Top, Check>, schema: Schema.Top, make: () => Schema.Top): Check => {
  let check = table.get(schema)
  if (check === undefined) {
    check = makeCheck(make())
    table.set(schema, check)
  }
  return check
}

/** Why an instance's params do not fit the job's `params` schema, or undefined. */
export const paramsProblem = (job: Job, params: unknown): string | undefined => {
  if (job.params === undefined) return undefined
  const schema = job.params
  const problem = cached(valueChecks, schema, () => schema)(params)
  return problem === undefined ? undefined : `params of job ${job.name} do not match its schema: ${problem}`
}

/** Why a map call's items do not fit the schema of their task name (the job's `tasks`), or undefined. */
export const mapItemsProblem = (
  job: Job | undefined,
  name: string,
  items: ReadonlyArray<unknown>
): string | undefined => {
  const tasks = job?.tasks
  if (job === undefined || tasks === undefined) return undefined
  const schema = Object.hasOwn(tasks, name) ? tasks[name] : undefined
  if (schema === undefined)
    return `job ${job.name} declares no task named ${JSON.stringify(name)}; its tasks: ${Object.keys(tasks).join(", ")}`
  const problem = cached(arrayChecks, schema, () => Schema.Array(schema))(items)
  return problem === undefined
    ? undefined
    : `items for task ${JSON.stringify(name)} do not match its schema: ${problem}`
}
