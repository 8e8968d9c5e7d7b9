import { fileURLToPath } from "node:url"
import { chromium, type Browser, type Page } from "playwright-core"
import { createServer, type ViteDevServer } from "vite"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import "../../demo/api.ts"
import { expectedWordCount, type WordCountParams, type WordCountResult } from "../../demo/wordcount.ts"
import { chromiumLaunchOptions } from "../chromium.ts"

/**
 * The demo page as a person uses it: served by vite on 127.0.0.1, opened in Chromium, reloaded by the
 * browser itself in the middle of a run.
 */
let server: ViteDevServer
let browser: Browser
let origin: string

beforeAll(async () => {
  server = await createServer({
    configFile: fileURLToPath(new URL("../../vite.config.ts", import.meta.url)),
    // No file watching: nothing but the test reloads the page.
    server: { host: "127.0.0.1", port: 0, hmr: false, watch: null },
    logLevel: "warn"
  })
  await server.listen()
  const address = server.httpServer?.address()
  if (address === null || address === undefined || typeof address === "string")
    throw new Error("vite did not listen on a port")
  origin = `http://127.0.0.1:${address.port}`
  browser = await chromium.launch(chromiumLaunchOptions)
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
})

const whenReady = (page: Page) =>
  page.waitForFunction(() => window.taskfoldDemo?.ready === true, null, { timeout: 30_000 })

describe("demo page in Chromium, reloaded by the browser mid-run", () => {
  it("R-REC-1 R-REC-2 a real page reload resumes the instance from IndexedDB; it completes with every chunk counted once and no terminal task run again", async () => {
    const trace = "e2e-trace"
    const params: WordCountParams = { lines: 24_000, linesPerChunk: 20, delayMs: 30, trace }
    const expected = expectedWordCount(params)
    const page = await browser.newPage()
    const errors: string[] = []
    page.on("pageerror", (error) => errors.push(error.message))
    await page.goto(`${origin}/?workers=3&trace=${trace}`)
    await whenReady(page)

    const instanceId = await page.evaluate((p) => window.taskfoldDemo!.start(p), params)
    await page.waitForFunction(
      ([id, count]) => (window.taskfoldDemo!.progress[id]?.byName["count"]?.succeeded ?? 0) >= count,
      [instanceId, 300] as const,
      {
        timeout: 60_000
      }
    )
    const terminalSeen = new Set(await page.evaluate((id) => window.taskfoldDemo!.terminalIds(id), instanceId))

    await page.reload()
    await whenReady(page)
    expect(await page.evaluate(() => window.taskfoldDemo!.resumed)).toEqual([instanceId])
    // The page shows the resumed run.
    await page.locator(`#run-${instanceId}`).getByText("resumed from IndexedDB").waitFor({ timeout: 10_000 })

    await page.waitForFunction(
      (id) => window.taskfoldDemo!.finished().some((run) => run.instanceId === id),
      instanceId,
      { timeout: 90_000 }
    )
    const run = (await page.evaluate(
      (id) => window.taskfoldDemo!.finished().find((entry) => entry.instanceId === id),
      instanceId
    ))!
    const progress = (await page.evaluate((id) => window.taskfoldDemo!.progress[id], instanceId))!
    const startedAfter = await page.evaluate(() => window.taskfoldDemo!.trace)

    expect(run.outcome.ok).toBe(true)
    expect(run.sessions).toBe(2)
    const result = JSON.parse(run.outcome.result) as WordCountResult
    expect({ chunks: result.chunks, words: result.words, distinct: result.distinct }).toEqual(expected)
    expect(progress.byName["count"]).toMatchObject({ total: expected.chunks, succeeded: expected.chunks, failed: 0 })
    // The reload came mid-run, and the work left was done after it, in the new page's workers.
    expect(terminalSeen.size).toBeGreaterThan(300)
    expect(terminalSeen.size).toBeLessThan(expected.chunks + 1)
    expect(startedAfter.length).toBeGreaterThan(0)
    // Tasks the store held as terminal before the reload did not run again.
    expect(startedAfter.filter((start) => terminalSeen.has(start.taskId))).toEqual([])
    // The finished run is on the page, and IndexedDB let go of the instance.
    await page.locator("#finished").getByText(instanceId).waitFor({ timeout: 10_000 })
    expect(await page.evaluate((id) => window.taskfoldDemo!.terminalIds(id), instanceId)).toEqual([])
    expect(errors).toEqual([])
    await page.close()
  }, 180_000)
})
