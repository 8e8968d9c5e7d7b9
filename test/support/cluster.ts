import { spawn, type ChildProcess } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
/** The `taskfold` command as its bin links it. */
export const cliFile = resolve(here, "../../packages/cli/bin/taskfold.mjs")
export const jobsDir = resolve(here, "../jobs")

export interface Proc {
  readonly name: string
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  /** Resolves with the first match of `pattern` on stderr (or stdout), waiting at most `timeoutMs`. */
  readonly waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>
  readonly exited: Promise<number | null>
  readonly kill: (signal?: NodeJS.Signals) => Promise<void>
}

/** Every process a test starts, killed (SIGKILL) after it. */
export const processes = () => {
  const started: Proc[] = []

  const start = (name: string, args: ReadonlyArray<string>, env: Record<string, string> = {}): Proc => {
    const child = spawn(process.execPath, [cliFile, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env }
    })
    let out = ""
    let err = ""
    const waiters = new Set<() => void>()
    const wake = () => {
      for (const waiter of [...waiters]) waiter()
    }
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk
      wake()
    })
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      err += chunk
      wake()
    })
    const exited = new Promise<number | null>((done) =>
      child.once("exit", (code) => {
        done(code)
        wake()
      })
    )
    let exitCode: number | null | undefined
    void exited.then((code) => (exitCode = code))
    const waitFor = (pattern: RegExp, timeoutMs = 30_000) =>
      new Promise<RegExpMatchArray>((ok, fail) => {
        const check = () => {
          const found = pattern.exec(err) ?? pattern.exec(out)
          if (found !== null) {
            finish()
            ok(found)
          } else if (exitCode !== undefined) {
            finish()
            fail(
              new Error(
                `${name} exited (${exitCode}) before printing ${pattern}\n` +
                  `--- stderr\n${err.slice(-3000)}\n--- stdout\n${out.slice(-1000)}`
              )
            )
          }
        }
        const timer = setTimeout(() => {
          finish()
          fail(new Error(`${name} did not print ${pattern} within ${timeoutMs} ms\n--- stderr\n${err.slice(-3000)}`))
        }, timeoutMs)
        const finish = () => {
          clearTimeout(timer)
          waiters.delete(check)
        }
        waiters.add(check)
        check()
      })
    const proc: Proc = {
      name,
      child,
      stdout: () => out,
      stderr: () => err,
      waitFor,
      exited,
      kill: async (signal = "SIGKILL") => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal)
        await exited
      }
    }
    started.push(proc)
    return proc
  }

  const killAll = async () => {
    await Promise.all(started.splice(0).map((proc) => proc.kill("SIGKILL")))
  }

  return { start, killAll }
}

export const tempDir = (prefix: string) => mkdtempSync(join(tmpdir(), `taskfold-e2e-${prefix}-`))
export const removeDir = (dir: string) => rmSync(dir, { recursive: true, force: true })

/** Execution lines the job wrote: one per sub-task start, per process. */
export const executions = (logDir: string): Array<{ id: string; attempt: number; at: number; pid: string }> => {
  const lines: Array<{ id: string; attempt: number; at: number; pid: string }> = []
  for (const file of readdirSync(logDir)) {
    const pid = file.replace(/\.log$/, "")
    for (const line of readFileSync(join(logDir, file), "utf8").split("\n")) {
      if (line.length === 0) continue
      const [id = "", attempt = "0", at = "0"] = line.split(" ")
      lines.push({ id, attempt: Number(attempt), at: Number(at), pid })
    }
  }
  return lines
}
