/**
 * Debian's redis-server for the BullMQ baseline, started by the bench itself: one fresh server per run
 * on 127.0.0.1 and a free port, no persistence (`--save "" --appendonly no`), stopped after the run.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { readFileSync } from "node:fs"
import { connect, createServer } from "node:net"

const BINARY = "redis-server"

const version = (): string | undefined => {
  const probe = spawnSync(BINARY, ["--version"], { encoding: "utf8" })
  if (probe.error !== undefined || probe.status !== 0) return undefined
  return /v=(\S+)/.exec(probe.stdout)?.[1] ?? probe.stdout.trim()
}

const tail = (text: string | null | undefined): string => (text ?? "").trim().split("\n").slice(-3).join(" | ")

/**
 * The redis-server version, installing Debian's package once (`apt-get update`, then
 * `apt-get install -y redis-server`) when it is missing and the bench runs as root;
 * otherwise why it cannot be had.
 */
export const ensureRedis = (
  log: (line: string) => void
): { readonly version: string } | { readonly missing: string } => {
  const found = version()
  if (found !== undefined) return { version: found }
  if (process.getuid?.() !== 0) {
    return {
      missing:
        "it is not installed and the bench is not root, so it cannot install it (run apt-get install -y redis-server)"
    }
  }
  log("redis-server is missing: apt-get update && apt-get install -y redis-server (once) …")
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  const update = spawnSync("apt-get", ["update"], { encoding: "utf8", env })
  if (update.error !== undefined || update.status !== 0) {
    return {
      missing: `it is not installed and apt-get update failed (${update.error?.message ?? tail(update.stderr)})`
    }
  }
  const install = spawnSync("apt-get", ["install", "-y", "--no-install-recommends", BINARY], { encoding: "utf8", env })
  if (install.error !== undefined || install.status !== 0) {
    return {
      missing:
        "it is not installed and apt-get install -y redis-server failed " +
        `(${install.error?.message ?? tail(install.stderr)})`
    }
  }
  const installed = version()
  return installed === undefined
    ? { missing: "it is still missing after apt-get install -y redis-server" }
    : { version: installed }
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))))
    })
  })

const ping = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1")
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once("error", () => done(false))
    socket.once("connect", () => socket.write("PING\r\n"))
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")))
  })

export interface RedisServer {
  readonly port: number
  readonly pid: number
  /** Peak RSS of the server process so far (VmHWM), in bytes. */
  readonly peakRss: () => number | null
  readonly stop: () => Promise<void>
}

const running = new Set<ChildProcess>()
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL")
})

export const startRedis = async (): Promise<RedisServer> => {
  const port = await freePort()
  const child = spawn(BINARY, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: ["ignore", "ignore", "pipe"]
  })
  running.add(child)
  let stderr = ""
  child.stderr?.on("data", (data: Buffer) => void (stderr += data.toString()))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const pid = child.pid
  for (let waited = 0; ; waited += 50) {
    if (pid === undefined || child.exitCode !== null) throw new Error(`redis-server did not start: ${tail(stderr)}`)
    if (await ping(port)) break
    if (waited > 10_000) {
      child.kill("SIGKILL")
      throw new Error("redis-server did not answer PING within 10 s")
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    port,
    pid: pid as number,
    peakRss: () => {
      try {
        const kb = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]
        return kb === undefined ? null : Number(kb) * 1024
      } catch {
        return null
      }
    },
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
      await exited
      clearTimeout(timer)
      running.delete(child)
    }
  }
}
