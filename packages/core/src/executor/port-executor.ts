import { taskfoldError } from "../model/task-error.ts"
import type { Executor, Settled, TaskCalls, TaskRun } from "../worker/execute.ts"
import { Outbox, toCallError, type FromGuest, type HostPort, type ToGuest } from "./protocol.ts"

export interface PortExecutorOptions<P extends HostPort> {
  /** Ports at most, all opened at once. */
  readonly ports: number
  /** Opens a port to a new guest: starts a worker thread, a Web Worker. */
  readonly open: () => P
  /** Ends a guest once the executor has closed (its runs are settled by then). */
  readonly close?: (port: P) => PromiseLike<unknown> | void
  /** The buffer of a run's body to move to the guest rather than copy, if any. */
  readonly transferOf?: (run: TaskRun) => ArrayBuffer | undefined
  /** A port got its first run (true) or settled its last (false): an idle guest need not keep its host alive. */
  readonly onBusy?: (port: P, busy: boolean) => void
}

export interface PortExecutor<P extends HostPort> extends Executor {
  /** Settles the runs still going as failed, refuses new ones, then closes every port. */
  readonly close: () => Promise<void>
  /**
   * The adapter tells that a guest stopped (it exited, an uncaught error ended it): its runs fail with
   * `cause`. A guest that had loaded its jobs is replaced at once; one that stopped while loading is
   * replaced by the next task, not here: no loop of guests dying at start.
   */
  readonly portLost: (port: P, cause: string) => void
  /** Resolves once every port's guest has loaded its jobs (or failed to). */
  readonly ready: () => Promise<void>
  /** Ports open now and tasks running on them. */
  readonly stats: () => { readonly ports: number; readonly running: number }
}

interface Run {
  readonly calls: TaskCalls
  readonly resolve: (settled: Settled) => void
  readonly signal: AbortSignal
  readonly onAbort: () => void
}

interface Guest<P> {
  readonly port: P
  readonly outbox: Outbox<ToGuest>
  /** Runs this guest has and has not settled yet, by their number on its port. */
  readonly runs: Map<number, Run>
  /** It loaded its jobs (or failed to): only such a guest is replaced at once when it is lost. */
  ready: boolean
  readonly loaded: Promise<void>
  readonly markLoaded: () => void
  /** Lost or closed: nothing more is sent to it. */
  gone: boolean
}

const failure = (reason: string, message: string): Settled => ({ ok: false, error: taskfoldError(reason, message) })

/**
 * An Executor over guests behind postMessage ports (worker threads, Web Workers): each new task goes to
 * the least busy guest, a guest runs many tasks at once (async processors), and a call a processor makes
 * there (map, appendContext, readResults) is made here through the run's TaskCalls and answered.
 */
export const portExecutor = <P extends HostPort>(options: PortExecutorOptions<P>): PortExecutor<P> => {
  const guests = new Map<P, Guest<P>>()
  let nextRun = 0
  let closed = false

  const settle = (guest: Guest<P>, id: number, settled: Settled): void => {
    const run = guest.runs.get(id)
    if (run === undefined) return
    guest.runs.delete(id)
    run.signal.removeEventListener("abort", run.onAbort)
    if (guest.runs.size === 0) options.onBusy?.(guest.port, false)
    run.resolve(settled)
  }

  const answer = (guest: Guest<P>, message: Extract<FromGuest, { type: "call" }>): void => {
    const run = guest.runs.get(message.id)
    const reply = (value: ToGuest) => {
      if (!guest.gone) guest.outbox.push(value)
    }
    if (run === undefined)
      return reply({
        type: "answer",
        call: message.call,
        ok: false,
        error: { name: "Error", message: "the task has ended" }
      })
    let pending: Promise<number | boolean | ReadonlyArray<unknown>>
    try {
      pending =
        message.method === "map"
          ? run.calls.map(...message.args)
          : message.method === "appendContext"
            ? run.calls.appendContext(...message.args)
            : run.calls.readResults(...message.args)
    } catch (error) {
      pending = Promise.reject(error)
    }
    pending.then(
      (value) => reply({ type: "answer", call: message.call, ok: true, value: value as never }),
      (error: unknown) => reply({ type: "answer", call: message.call, ok: false, error: toCallError(error) })
    )
  }

  /**
   * Posts a guest's messages at once. If they cannot go (a buffer to move that is already gone), each goes
   * alone and copied, and a run that still cannot go fails by itself: nothing is thrown where no one catches it.
   */
  const post = (guest: Guest<P>, messages: ToGuest[], transfer: ArrayBuffer[]): void => {
    try {
      guest.port.postMessage(messages, transfer)
      return
    } catch {
      // One at a time below.
    }
    for (const message of messages) {
      try {
        guest.port.postMessage([message])
      } catch (error) {
        if (message.type === "run")
          settle(guest, message.id, failure("not-sent", `the task cannot be sent to a worker thread: ${String(error)}`))
      }
    }
  }

  const open = (): Guest<P> => {
    const port = options.open()
    let markLoaded: () => void = () => {}
    const loaded = new Promise<void>((resolve) => (markLoaded = resolve))
    const guest: Guest<P> = {
      port,
      loaded,
      markLoaded,
      outbox: new Outbox((messages, transfer) => post(guest, messages, transfer)),
      runs: new Map(),
      ready: false,
      gone: false
    }
    port.onMessage((messages) => {
      if (guest.gone) return
      for (const message of messages) {
        if (message.type === "settled") settle(guest, message.id, message.settled)
        else if (message.type === "call") answer(guest, message)
        else {
          guest.ready = true
          guest.markLoaded()
        }
      }
    })
    guests.set(port, guest)
    return guest
  }

  /** The least busy guest; a new one while every guest is busy and one is missing. */
  const pick = (): Guest<P> => {
    let best: Guest<P> | undefined
    for (const guest of guests.values()) if (best === undefined || guest.runs.size < best.runs.size) best = guest
    return best !== undefined && (best.runs.size === 0 || guests.size >= options.ports) ? best : open()
  }

  for (let i = 0; i < options.ports; i++) open()

  return {
    run: (run, calls, signal) => {
      if (closed) return Promise.resolve(failure("pool-closed", "the executor is closed"))
      const guest = pick()
      const id = nextRun++
      return new Promise<Settled>((resolveRun) => {
        const onAbort = () => guest.outbox.push({ type: "abort", id, reason: String(signal.reason ?? "aborted") })
        guest.runs.set(id, { calls, resolve: resolveRun, signal, onAbort })
        if (guest.runs.size === 1) options.onBusy?.(guest.port, true)
        guest.outbox.push({ type: "run", id, run }, options.transferOf?.(run))
        if (signal.aborted) onAbort()
        else signal.addEventListener("abort", onAbort, { once: true })
      })
    },
    portLost: (port, cause) => {
      const guest = guests.get(port)
      if (guest === undefined || guest.gone) return
      guest.gone = true
      guests.delete(port)
      guest.markLoaded()
      const stopped = `the worker thread running this task stopped (${cause})`
      const message = `${stopped}; the tasks running on that thread failed with it`
      for (const id of [...guest.runs.keys()]) settle(guest, id, failure("thread-crashed", message))
      if (guest.ready && !closed) open()
    },
    close: async () => {
      closed = true
      const closing = [...guests.values()]
      guests.clear()
      for (const guest of closing) {
        guest.gone = true
        guest.markLoaded()
        for (const id of [...guest.runs.keys()])
          settle(guest, id, failure("pool-closed", "the executor closed while the task ran"))
      }
      await Promise.all(closing.map((guest) => options.close?.(guest.port)))
    },
    ready: () => Promise.all([...guests.values()].map((guest) => guest.loaded)).then(() => undefined),
    stats: () => ({
      ports: guests.size,
      running: [...guests.values()].reduce((sum, guest) => sum + guest.runs.size, 0)
    })
  }
}
