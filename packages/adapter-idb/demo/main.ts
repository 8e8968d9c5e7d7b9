import { Effect, Scope } from "effect"
import type { Outcome, Progress } from "@taskfold/core"
import type { Tracker } from "@taskfold/core/adapter"
import { defaultPoolSize, openIdbStore, startBrowserCluster, type BrowserCluster, type IdbStore } from "../src/index.ts"
import type { DemoApi, FinishedRun } from "./api.ts"
import { wordCount, type WordCountParams, type WordCountResult } from "./wordcount.ts"

const DATABASE = "taskfold-demo"
const STARTED_KEY = "taskfold-demo:started"
const FINISHED_KEY = "taskfold-demo:finished"
const KEEP_FINISHED = 10
const HEARTBEAT = 1_000
/**
 * Short timers, so work placed on the Web Workers of a page that was reloaded is taken back within
 * seconds; a short queue per worker, so the tracker keeps the waiting tasks and the table shows them.
 */
const config = {
  heartbeatInterval: HEARTBEAT,
  workerTimeout: 4_000,
  ackTimeout: 3_000,
  progressInterval: 250,
  queueAllowance: 8
}

const query = new URLSearchParams(location.search)
const element = <T extends HTMLElement>(selector: string) => document.querySelector(selector) as T
const form = element<HTMLFormElement>("#run")
const statusLine = element<HTMLDivElement>("#status")
const instancesBox = element<HTMLDivElement>("#instances")
const finishedBox = element<HTMLDivElement>("#finished")

// What the page remembers beside IndexedDB: the params and start time of its runs, and finished outcomes.
interface StartedRun {
  readonly params: WordCountParams
  readonly startedAt: number
  sessions: number
}
const readJson = <A>(key: string, fallback: A): A => {
  try {
    const text = localStorage.getItem(key)
    return text === null ? fallback : (JSON.parse(text) as A)
  } catch {
    return fallback
  }
}
const started = (): Record<string, StartedRun> => readJson(STARTED_KEY, {})
const saveStarted = (runs: Record<string, StartedRun>) => localStorage.setItem(STARTED_KEY, JSON.stringify(runs))
const finished = (): FinishedRun[] => readJson(FINISHED_KEY, [])

const trackers = new Map<string, Tracker>()
const rates = new Map<string, { at: number; done: number; rate: number }>()

const api: DemoApi = {
  ready: false,
  error: null,
  workers: [],
  resumed: [],
  progress: {},
  finished,
  start: () => Promise.reject(new Error("the page is not ready")),
  terminalIds: () => Promise.reject(new Error("the page is not ready")),
  trace: []
}
window.taskfoldDemo = api

const traceName = query.get("trace")
if (traceName !== null) {
  new BroadcastChannel(traceName).onmessage = (event: MessageEvent<{ taskId: string; attempt: number }>) =>
    void api.trace.push(event.data)
}

const setStatus = (text: string, isError = false) => {
  statusLine.textContent = text
  statusLine.className = isError ? "error" : ""
}

// ---- rendering ---------------------------------------------------------------------------------------

const cell = (text: string | number, className?: string) => {
  const td = document.createElement("td")
  td.textContent = String(text)
  if (className) td.className = className
  return td
}
const barCell = (share: number) => {
  const td = document.createElement("td")
  td.className = "bar"
  const track = document.createElement("div")
  const fill = document.createElement("span")
  fill.style.width = `${Math.max(0, Math.min(1, share)) * 100}%`
  track.append(fill)
  td.append(track)
  return td
}
const table = (headers: string[], rows: HTMLTableRowElement[]) => {
  const t = document.createElement("table")
  const head = document.createElement("tr")
  for (const header of headers) {
    const th = document.createElement("th")
    th.textContent = header
    head.append(th)
  }
  t.append(head, ...rows)
  return t
}
const row = (...cells: HTMLTableCellElement[]) => {
  const tr = document.createElement("tr")
  tr.append(...cells)
  return tr
}

const renderInstance = (instanceId: string) => {
  const progress = api.progress[instanceId]
  let card = document.getElementById(`run-${instanceId}`)
  if (!trackers.has(instanceId)) {
    card?.remove()
    if (trackers.size === 0) instancesBox.innerHTML = '<p class="muted">Nothing running.</p>'
    return
  }
  if (card === null) {
    instancesBox.querySelector("p.muted")?.remove()
    card = document.createElement("section")
    card.id = `run-${instanceId}`
    card.className = "card"
    instancesBox.append(card)
  }
  const info = started()[instanceId]
  const header = document.createElement("header")
  const title = document.createElement("div")
  const code = document.createElement("code")
  code.textContent = instanceId
  title.append(code)
  if (api.resumed.includes(instanceId)) {
    const tag = document.createElement("span")
    tag.className = "tag"
    tag.textContent = "resumed from IndexedDB"
    title.append(tag)
  }
  const kill = document.createElement("button")
  kill.className = "quiet"
  kill.textContent = "Kill"
  kill.onclick = () => {
    const tracker = trackers.get(instanceId)
    if (tracker) void Effect.runPromise(Effect.ignore(tracker.kill(null, "killed from the page")))
  }
  header.append(title, kill)
  const children: Node[] = [header]
  if (info) {
    const p = document.createElement("p")
    p.className = "muted"
    p.textContent =
      `${info.params.lines.toLocaleString()} lines, ${info.params.linesPerChunk} per chunk, ` +
      `${info.params.delayMs ?? 0} ms per chunk; page loads so far: ${info.sessions}`
    children.push(p)
  }
  if (progress) {
    const now = performance.now()
    const nameRows = Object.entries(progress.byName).map(([name, p]) => {
      const done = p.succeeded + p.failed
      let rate = 0
      if (name === "count") {
        const previous = rates.get(instanceId)
        rate = previous && now > previous.at ? ((done - previous.done) * 1000) / (now - previous.at) : 0
        rates.set(instanceId, { at: now, done, rate })
      }
      return row(
        cell(name),
        barCell(p.total === 0 ? 0 : done / p.total),
        cell(`${done} / ${p.total}`),
        cell(p.waiting),
        cell(p.dispatched),
        cell(p.running),
        cell(p.succeeded),
        cell(p.failed),
        cell(name === "count" ? `${Math.round(rate)}/s` : "")
      )
    })
    const workers = Object.entries(progress.byWorker)
    const most = Math.max(1, ...workers.map(([, w]) => w.succeeded + w.failed))
    const workerRows = workers.map(([id, w]) =>
      row(
        cell(id === "page" ? "page (root, reduce)" : id),
        barCell((w.succeeded + w.failed) / most),
        cell(w.assigned),
        cell(w.running),
        cell(w.succeeded),
        cell(w.failed)
      )
    )
    children.push(
      table(["task name", "", "done", "waiting", "dispatched", "running", "succeeded", "failed", "rate"], nameRows),
      table(["worker", "", "assigned", "running", "succeeded", "failed"], workerRows)
    )
  } else {
    const p = document.createElement("p")
    p.className = "muted"
    p.textContent = "waiting for the first progress report…"
    children.push(p)
  }
  card.replaceChildren(...children)
}

const renderFinished = () => {
  const runs = finished()
  if (runs.length === 0) {
    finishedBox.innerHTML = '<p class="muted">Nothing finished yet.</p>'
    return
  }
  finishedBox.replaceChildren(
    ...runs.map((run) => {
      const card = document.createElement("section")
      card.className = "card result"
      const header = document.createElement("header")
      const title = document.createElement("div")
      const code = document.createElement("code")
      code.textContent = run.instanceId
      const tag = document.createElement("span")
      tag.className = `tag ${run.outcome.ok ? "ok" : "fail"}`
      tag.textContent = run.outcome.ok ? "succeeded" : "failed"
      title.append(code, tag)
      const when = document.createElement("span")
      when.className = "muted"
      const seconds = run.startedAt === null ? null : (run.outcome.finishedAt - run.startedAt) / 1000
      when.textContent =
        (seconds === null ? "" : `${seconds.toFixed(1)} s`) +
        (run.sessions > 1 ? `, across ${run.sessions} page loads` : "")
      header.append(title, when)
      const body = document.createElement("p")
      if (run.outcome.ok) {
        const value = JSON.parse(run.outcome.result) as WordCountResult
        body.textContent =
          `${value.words.toLocaleString()} words (${value.distinct} distinct) ` +
          `in ${value.chunks.toLocaleString()} chunks. ` +
          `Most frequent: ${value.top.map(([word, count]) => `${word} ${count.toLocaleString()}`).join(", ")}`
      } else body.textContent = run.outcome.result
      card.append(header, body)
      return card
    })
  )
}

// ---- the cluster -------------------------------------------------------------------------------------

/** The owner of every instance: keeps the outcome, then the tracker lets go of the instance (R-FIN-6). */
const takeOutcome = (instanceId: string, outcome: Outcome) => {
  const runs = started()
  const info = runs[instanceId]
  const others = finished().filter((run) => run.instanceId !== instanceId)
  const entry: FinishedRun = {
    instanceId,
    params: info?.params ?? null,
    startedAt: info?.startedAt ?? null,
    outcome,
    sessions: info?.sessions ?? 1
  }
  localStorage.setItem(FINISHED_KEY, JSON.stringify([entry, ...others].slice(0, KEEP_FINISHED)))
  delete runs[instanceId]
  saveStarted(runs)
  trackers.delete(instanceId)
  renderInstance(instanceId)
  renderFinished()
}

const watch = (tracker: Tracker) => {
  const id = tracker.instanceId
  trackers.set(id, tracker)
  const show = (progress: Progress) => {
    api.progress[id] = progress
    renderInstance(id)
  }
  tracker.onProgress(show)
  void Effect.runPromise(tracker.progress).then(show)
}

const terminalIds = (store: IdbStore, instanceId: string) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const ids: string[] = []
      for (let after = -1; ; ) {
        const page = yield* store.readResults(instanceId, 0, after, 1_000)
        ids.push(...page.map((result) => result.id))
        if (page.length < 1_000) return ids
        after = page[page.length - 1]!.seq
      }
    })
  )

const main = async () => {
  const store = await openIdbStore({ name: DATABASE })
  const requested = Number(query.get("workers"))
  const size = Number.isInteger(requested) && requested > 0 ? requested : defaultPoolSize()
  const scope = Effect.runSync(Scope.make())
  const cluster: BrowserCluster = await Effect.runPromise(
    startBrowserCluster({
      store,
      jobs: [wordCount],
      createWorker: () =>
        new Worker(new URL("./worker.ts", import.meta.url), { type: "module", name: "taskfold worker" }),
      workers: size,
      heartbeatInterval: HEARTBEAT,
      onOutcome: takeOutcome
    }).pipe(Scope.provide(scope))
  )
  ;(api as { workers: ReadonlyArray<string> }).workers = cluster.workers.map((worker) => worker.id)

  // R-REC-1: every instance stored in IndexedDB is resumed where it stopped.
  const resumed = await Effect.runPromise(cluster.resumeAll())
  const runs = started()
  for (const tracker of resumed) {
    api.resumed.push(tracker.instanceId)
    const info = runs[tracker.instanceId]
    if (info) info.sessions++
    watch(tracker)
  }
  saveStarted(runs)

  const start = async (params: WordCountParams): Promise<string> => {
    const tracker = await Effect.runPromise(cluster.start(wordCount, { params, config }))
    saveStarted({ ...started(), [tracker.instanceId]: { params, startedAt: Date.now(), sessions: 1 } })
    watch(tracker)
    return tracker.instanceId
  }
  ;(api as { start: DemoApi["start"] }).start = start
  ;(api as { terminalIds: DemoApi["terminalIds"] }).terminalIds = (instanceId) => terminalIds(store, instanceId)

  form.addEventListener("submit", (event) => {
    event.preventDefault()
    const data = new FormData(form)
    const number = (name: string, fallback: number) => {
      const value = Number(data.get(name))
      return Number.isFinite(value) && value >= 0 ? Math.floor(value) : fallback
    }
    const params: WordCountParams = {
      lines: Math.max(1, number("lines", 100_000)),
      linesPerChunk: Math.max(1, number("linesPerChunk", 50)),
      delayMs: number("delayMs", 0),
      seed: number("seed", 7),
      ...(traceName === null ? {} : { trace: traceName })
    }
    start(params).catch((error: unknown) => setStatus(`Could not start: ${String(error)}`, true))
  })
  element<HTMLButtonElement>("#clear").onclick = () => {
    localStorage.removeItem(FINISHED_KEY)
    renderFinished()
  }
  form.querySelector("button[type=submit]")?.removeAttribute("disabled")
  setStatus(
    `${cluster.workers.length} Web Workers (navigator.hardwareConcurrency = ${navigator.hardwareConcurrency}), ` +
      `4 slots each; tasks stored in IndexedDB "${DATABASE}".` +
      (resumed.length > 0 ? ` Resumed ${resumed.length} run${resumed.length > 1 ? "s" : ""} from IndexedDB.` : "")
  )
  api.ready = true
}

renderFinished()
/**
 * One tab at a time runs the stored instances: a second tab would resume the same instance a second
 * time. A reloading tab gets the lock as soon as its previous page is gone.
 */
const run = async () => {
  if (!("locks" in navigator)) return main()
  await navigator.locks.request(DATABASE, { signal: AbortSignal.timeout(5_000) }, async () => {
    await main()
    // Held as long as this page lives.
    await new Promise(() => undefined)
  })
}
run().catch((error: unknown) => {
  const text =
    error instanceof DOMException && (error.name === "TimeoutError" || error.name === "AbortError")
      ? "Another tab runs this demo: close it, or run the demo there."
      : `The demo could not start: ${error instanceof Error ? error.message : String(error)}`
  api.error = text
  setStatus(text, true)
})
