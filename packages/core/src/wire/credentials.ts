/**
 * Who is calling (R-WIRE-4). The operator holds the tracker's secret: it submits, reads, lists and kills.
 * A worker holds a credential bound to its id, `tfw1.<id>.<mac>`, the mac an HMAC-SHA256 of the id under the
 * secret: the operator issues one per worker (`workerCredential`, or `taskfold credential --worker ID`), the
 * tracker checks it without keeping a list, and it lets its holder act only as that worker. The secret
 * never leaves the operator's side: the tracker calls a worker with the key that worker chose when it
 * registered, which opens nothing else.
 */

export type Caller = { readonly role: "operator" } | { readonly role: "worker"; readonly workerId: string }

const PREFIX = "tfw1"
/** Shorter secrets are refused: a guess must not be cheap. */
export const MIN_SECRET_LENGTH = 16

const encoder = new TextEncoder()

const base64url = (bytes: Uint8Array): string => {
  let text = ""
  for (const byte of bytes) text += String.fromCharCode(byte)
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")
}

const fromBase64url = (text: string): Uint8Array<ArrayBuffer> | undefined => {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined
  try {
    const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"))
    return Uint8Array.from(binary, (char) => char.charCodeAt(0))
  } catch {
    return undefined
  }
}

const hmacKey = (secret: string): Promise<CryptoKey> =>
  crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"])

const subject = (workerId: string) => encoder.encode(`worker:${workerId}`)

/** Why a secret cannot serve, in one line; undefined if it can. */
export const secretProblem = (secret: string): string | undefined =>
  secret.length < MIN_SECRET_LENGTH
    ? `the secret must be at least ${MIN_SECRET_LENGTH} characters (it has ${secret.length})`
    : undefined

/** The credential of one worker under the tracker's secret: give it to that worker's process only. */
export const workerCredential = async (secret: string, workerId: string): Promise<string> => {
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret), subject(workerId)))
  return `${PREFIX}.${base64url(encoder.encode(workerId))}.${base64url(mac)}`
}

/** The worker id a credential names, without checking it (a worker process learns its own id from it). */
export const credentialWorkerId = (credential: string): string | undefined => {
  const [prefix, id, mac, ...rest] = credential.split(".")
  if (prefix !== PREFIX || id === undefined || mac === undefined || rest.length > 0) return undefined
  const bytes = fromBase64url(id)
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes)
}

const constantTimeEqual = (a: string, b: string): boolean => {
  let diff = a.length ^ b.length
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0)
  return diff === 0
}

/** Checked credentials are kept, so a worker's every call costs one lookup; the table is bounded. */
const CACHED = 4_096

/**
 * Tells the caller of an `Authorization` header, or undefined: no valid credential (401). `previous` secrets
 * are accepted too, as the operator's and for worker credentials made under them: while a secret is rotated,
 * workers holding credentials of the old one go on until they are given new ones (docs/decisions.md, "Roles").
 */
export const makeCredentialCheck = (
  secret: string,
  previous: ReadonlyArray<string> = []
): ((header: string) => Promise<Caller | undefined>) => {
  const secrets = [secret, ...previous]
  const keys = secrets.map(hmacKey)
  const operators = secrets.map((each) => `Bearer ${each}`)
  const checked = new Map<string, Caller | undefined>()
  const check = async (header: string): Promise<Caller | undefined> => {
    if (operators.some((operator) => constantTimeEqual(header, operator))) return { role: "operator" }
    if (!header.startsWith(`Bearer ${PREFIX}.`)) return undefined
    const credential = header.slice("Bearer ".length)
    const [, id, mac] = credential.split(".")
    const workerId = credentialWorkerId(credential)
    const macBytes = mac === undefined ? undefined : fromBase64url(mac)
    if (id === undefined || workerId === undefined || macBytes === undefined) return undefined
    for (const key of keys) {
      if (await crypto.subtle.verify("HMAC", await key, macBytes, subject(workerId)))
        return { role: "worker", workerId }
    }
    return undefined
  }
  return async (header) => {
    if (checked.has(header)) return checked.get(header)
    const caller = await check(header)
    if (checked.size >= CACHED) checked.clear()
    checked.set(header, caller)
    return caller
  }
}
