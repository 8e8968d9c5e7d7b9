import type { JobConfigOverrides } from "@taskfold/core"
import { httpTrackerClient, type InstanceStatus } from "@taskfold/core/wire"
import { SELF } from "cloudflare:test"
import { env } from "cloudflare:workers"
import { Effect, type Schema } from "effect"

export const SECRET = "test-secret-0123456789"
export const BASE = "https://taskfold.test"
export const auth = { authorization: `Bearer ${SECRET}`, "content-type": "application/json" }

/** Core's client for an instance's owner, over the Worker's fetch. */
export const client = httpTrackerClient({ baseUrl: BASE, token: SECRET, fetch: (url, init) => SELF.fetch(url, init) })

export const call = (path: string, init: RequestInit = {}) =>
  SELF.fetch(`${BASE}${path}`, {
    ...init,
    headers: { ...auth, ...(init.headers as Record<string, string> | undefined) }
  })

export const submit = (
  job: string,
  params: unknown,
  config: Record<string, unknown> = {},
  instanceId?: string
): Promise<string> =>
  Effect.runPromise(
    client.submit({
      job,
      params: params as Schema.Json,
      config: config as JobConfigOverrides,
      ...(instanceId === undefined ? {} : { instanceId })
    })
  )

export const status = (instanceId: string): Promise<InstanceStatus> => Effect.runPromise(client.status(instanceId))

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export const waitUntil = async (condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000) => {
  const until = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for: ${what}`)
    await sleep(20)
  }
}

/** Polls the status endpoint until the instance has its outcome. */
export const finished = async (instanceId: string, timeoutMs = 30_000): Promise<InstanceStatus> => {
  let last: InstanceStatus | undefined
  await waitUntil(async () => (last = await status(instanceId)).outcome !== null, `${instanceId} finished`, timeoutMs)
  return last!
}

export const trackerOf = (instanceId: string) => env.TRACKER.get(env.TRACKER.idFromName(instanceId))

export const within = <A>(promise: Promise<A>, ms: number, what: string): Promise<A> =>
  Promise.race([
    promise,
    sleep(ms).then(() => Promise.reject(new Error(`timed out after ${ms} ms waiting for ${what}`)))
  ])

export const freshId = (job: string) => `${job}-${crypto.randomUUID()}`
