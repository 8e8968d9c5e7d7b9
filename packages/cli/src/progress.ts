import type { Progress } from "@taskfold/core"

export interface ProgressView {
  readonly update: (progress: Progress) => void
  /** Draws the last state once more (a terminal keeps the finished bars). */
  readonly done: () => void
}

interface Stream {
  readonly isTTY?: boolean
  readonly write: (text: string) => unknown
}

const BAR = 28

/**
 * Progress per task name: bars redrawn in place on a terminal, otherwise one plain line at most every
 * `plainEveryMs` (and whenever the counts move after that), so logs stay readable.
 */
export const progressView = (
  stream: Stream,
  options: { readonly plainEveryMs?: number; readonly tty?: boolean } = {}
): ProgressView => {
  const tty = options.tty ?? stream.isTTY === true
  const plainEvery = options.plainEveryMs ?? 2_000
  let drawn = 0
  let last: Progress | undefined
  let lastPlainAt = 0
  let lastPlain = ""
  let previous: { at: number; done: number } | undefined
  let first: { at: number; done: number } | undefined
  let rate = 0

  const totals = (progress: Progress) => {
    let total = 0
    let done = 0
    let failed = 0
    for (const counts of Object.values(progress.byName)) {
      total += counts.total
      done += counts.succeeded + counts.failed
      failed += counts.failed
    }
    return { total, done, failed }
  }

  const measure = (progress: Progress) => {
    const { done } = totals(progress)
    const now = Date.now()
    first ??= { at: now, done }
    if (previous !== undefined && now - previous.at >= 200) {
      const current = ((done - previous.done) * 1000) / (now - previous.at)
      rate = rate === 0 ? current : rate * 0.5 + current * 0.5
      previous = { at: now, done }
    } else if (previous === undefined) previous = { at: now, done }
  }

  const drawTty = (progress: Progress) => {
    const rows: string[] = []
    for (const [name, counts] of Object.entries(progress.byName)) {
      const done = counts.succeeded + counts.failed
      const filled = counts.total === 0 ? 0 : Math.round((done / counts.total) * BAR)
      const failed = counts.failed > 0 ? ` ${counts.failed} failed` : ""
      rows.push(
        `${name.slice(0, 12).padEnd(12)} [${"#".repeat(filled).padEnd(BAR, ".")}] ` +
          `${String(done).padStart(8)} / ${String(counts.total).padEnd(8)}${failed}`
      )
    }
    const workers = Object.keys(progress.byWorker).length
    rows.push(`${Math.round(rate)} tasks/s, ${workers} worker${workers === 1 ? "" : "s"}`)
    const up = drawn > 0 ? `\x1b[${drawn}A` : ""
    stream.write(up + rows.map((row) => `\r${row}\x1b[K\n`).join(""))
    drawn = rows.length
  }

  const plainLine = (progress: Progress) => {
    const parts = Object.entries(progress.byName).map(([name, counts]) => {
      const failed = counts.failed > 0 ? ` (${counts.failed} failed)` : ""
      return `${name} ${counts.succeeded + counts.failed}/${counts.total}${failed}`
    })
    return `progress: ${parts.join(", ") || "starting"}`
  }

  const drawPlain = (progress: Progress, force: boolean) => {
    const line = plainLine(progress)
    const now = Date.now()
    if (!force && (line === lastPlain || now - lastPlainAt < plainEvery)) return
    lastPlain = line
    lastPlainAt = now
    stream.write(rate >= 1 ? `${line}, ${Math.round(rate)} tasks/s\n` : `${line}\n`)
  }

  return {
    update: (progress) => {
      last = progress
      measure(progress)
      if (tty) drawTty(progress)
      else drawPlain(progress, false)
    },
    done: () => {
      if (last === undefined || first === undefined) return
      // The closing line shows the rate over the whole run.
      const seconds = (Date.now() - first.at) / 1000
      rate = seconds > 0 ? (totals(last).done - first.done) / seconds : 0
      if (tty) drawTty(last)
      else drawPlain(last, true)
    }
  }
}

/** A short human summary of an instance, for `taskfold status`. */
export const describeStatus = (status: {
  readonly instanceId: string
  readonly progress: Progress
  readonly outcome: Progress["outcome"]
}): string => {
  const lines: string[] = []
  const outcome = status.outcome
  lines.push(`instance ${status.instanceId}: ${outcome === null ? "running" : outcome.ok ? "succeeded" : "failed"}`)
  if (outcome !== null)
    lines.push(`  result: ${outcome.result.length > 500 ? `${outcome.result.slice(0, 500)}…` : outcome.result}`)
  const names = Object.entries(status.progress.byName)
  if (names.length > 0) {
    lines.push("  tasks          total  waiting  dispatched  running  succeeded  failed")
    for (const [name, c] of names) {
      lines.push(
        `  ${name.slice(0, 12).padEnd(12)} ${String(c.total).padStart(7)} ${String(c.waiting).padStart(8)} ` +
          `${String(c.dispatched).padStart(11)} ${String(c.running).padStart(8)} ` +
          `${String(c.succeeded).padStart(10)} ${String(c.failed).padStart(7)}`
      )
    }
  }
  const workers = Object.entries(status.progress.byWorker)
  if (workers.length > 0) {
    lines.push("  workers                          assigned  running  succeeded  failed")
    for (const [id, w] of workers) {
      lines.push(
        `  ${id.slice(0, 32).padEnd(32)} ${String(w.assigned).padStart(8)} ${String(w.running).padStart(8)} ` +
          `${String(w.succeeded).padStart(10)} ${String(w.failed).padStart(7)}`
      )
    }
  }
  return lines.join("\n")
}
