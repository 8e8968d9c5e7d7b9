/** Runs one scenario in a fresh Node process (this Node) and returns the JSON line it emitted. */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { RESULT_PREFIX } from "./common.ts"

export const scenarioPath = (name: string): string => fileURLToPath(new URL(`../scenarios/${name}.ts`, import.meta.url))

export type ChildResult = Readonly<Record<string, unknown>> & {
  readonly seconds: number
  readonly peakRss: number
  readonly perSecond: number
}

export const runScenario = (name: string, args: ReadonlyArray<string>, timeoutMs = 10 * 60_000): Promise<ChildResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [scenarioPath(name), ...args], { stdio: ["ignore", "pipe", "inherit"] })
    let stdout = ""
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk
    })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, timeoutMs)
    child.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      const line = stdout
        .split("\n")
        .reverse()
        .find((text) => text.startsWith(RESULT_PREFIX))
      if (timedOut)
        return reject(new Error(`${name} ${args.join(" ")} took longer than ${timeoutMs / 1000} s and was killed`))
      if (code !== 0 || line === undefined) {
        return reject(
          new Error(
            `${name} ${args.join(" ")} exited with ${signal ?? code} and no result` +
              (line === undefined ? "" : " (a result was printed)")
          )
        )
      }
      resolve(JSON.parse(line.slice(RESULT_PREFIX.length)) as ChildResult)
    })
  })
