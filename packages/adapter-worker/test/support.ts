import type { Outcome, Progress } from "@taskfold/core"
import { SELF } from "cloudflare:test"
import { env } from "cloudflare:workers"

export const SECRET = "test-secret"
export const auth = { authorization: `Bearer ${SECRET}`, "content-type": "application/json" }

export interface Status {
  readonly instanceId: string
  readonly job: string
  readonly state: "running" | "finishing" | "finished"
  readonly outcome: Outcome | null
  readonly progress: Progress | null
}

export const call = (path: string, init: RequestInit = {}) =>
  SELF.fetch(`https://taskfold.test${path}`, { ...init, headers: { ...auth, ...(init.headers as Record<string, string> | undefined) } })

export const submit = async (job: string, params: unknown, config: Record<string, unknown> = {}, instanceId?: string): Promise<string> => {
  const response = await call("/instances", { method: "POST", body: JSON.stringify({ job, params, config, ...(instanceId === undefined ? {} : { instanceId }) }) })
  const body = (await response.json()) as { instanceId: string }
  if (response.status !== 201) throw new Error(`submit answered ${response.status}: ${JSON.stringify(body)}`)
  return body.instanceId
}

export const status = async (instanceId: string): Promise<Status> => {
  const response = await call(`/instances/${instanceId}`)
  if (!response.ok) throw new Error(`status answered ${response.status}: ${await response.text()}`)
  return (await response.json()) as Status
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export const waitUntil = async (condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000) => {
  const until = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for: ${what}`)
    await sleep(20)
  }
}

/** Polls the status endpoint until the instance is finished. */
export const finished = async (instanceId: string, timeoutMs = 30_000): Promise<Status> => {
  let last: Status | undefined
  await waitUntil(async () => (last = await status(instanceId)).state === "finished", `${instanceId} finished`, timeoutMs)
  return last!
}

export const trackerOf = (instanceId: string) => env.TRACKER.get(env.TRACKER.idFromName(instanceId))

export const within = <A>(promise: Promise<A>, ms: number, what: string): Promise<A> =>
  Promise.race([promise, sleep(ms).then(() => Promise.reject(new Error(`timed out after ${ms} ms waiting for ${what}`)))])

export const freshId = (job: string) => `${job}-${crypto.randomUUID()}`
