/**
 * The fault network of the system simulation: deterministic for a seed, faults as its policy says, perfect
 * once calm, and a crashed tracker's calls fail as a dropped connection would.
 */
import { Effect, Exit, Fiber, Scope } from "effect"
import { TestClock } from "effect/testing"
import { describe, expect, it } from "vitest"
import { RejectedError } from "../../src/index.ts"
import type { TaskBatch, Tracker, WorkerHandle } from "../../src/adapter.ts"
import { makeFaultNetwork, noFaults, type FaultPolicy } from "../../src/testing/fault-network.ts"

const batch = (tasks: number, seq = 0): TaskBatch => ({
  instanceId: "i",
  job: "j",
  seq,
  context: {},
  tasks: Array.from(
    { length: tasks },
    (_, k) => ({ id: `0.${k + 1}`, name: "a", kind: 2, body: `"${k}"`, attempt: 0 }) as TaskBatch["tasks"][number]
  )
})

const recordingWorker = (id: string, taken: number[]): WorkerHandle => ({
  id,
  join: () => Effect.void,
  deliver: (b) => {
    taken.push(b.seq)
    return undefined
  },
  stop: () => {},
  stats: () => ({ running: 0, queued: 0, completed: 0 })
})

/** Sends 200 batches through a network with `policy`; what the worker took and what the sender heard. */
const sendMany = (seed: number, policy: FaultPolicy, calmAfter = Number.POSITIVE_INFINITY) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const net = yield* makeFaultNetwork({ seed, policy })
        const taken: number[] = []
        net.addWorker(recordingWorker("w", taken))
        const heard: string[] = []
        const fibers = []
        for (let seq = 0; seq < 200; seq++) {
          if (seq === calmAfter) net.calm()
          fibers.push(
            yield* Effect.forkChild(
              net.transport.send("w", batch(1 + (seq % 4), seq)).pipe(
                Effect.match({ onSuccess: () => "ok", onFailure: (error) => error.reason }),
                Effect.tap((answer) => Effect.sync(() => heard.push(`${seq}:${answer}`)))
              )
            )
          )
        }
        yield* TestClock.adjust(60_000)
        yield* Fiber.joinAll(fibers)
        return { taken, heard: heard.sort(), stats: [...net.stats].sort() }
      })
    ).pipe(Effect.provide(TestClock.layer()))
  )

const faulty: FaultPolicy = {
  refuse: 0.1,
  lose: 0.1,
  loseAnswer: 0.1,
  duplicate: 0.2,
  delay: 0.3,
  maxDelayMs: 500,
  timeoutMs: 1_000
}

describe("fault network", () => {
  it("is deterministic for a seed and different for another", async () => {
    const a = await sendMany(7, faulty)
    const b = await sendMany(7, faulty)
    const c = await sendMany(8, faulty)
    expect(a).toEqual(b)
    expect(c).not.toEqual(a)
  })

  it("refuses, loses, loses answers, duplicates and delays as its policy says", async () => {
    const { taken, heard, stats } = await sendMany(1, faulty)
    const keys = stats.map(([key]) => key)
    for (const fault of ["refused", "lost", "lost-answer", "duplicated", "delayed"])
      expect(keys).toContain(`send:${fault}`)
    // A duplicated batch arrives twice; a refused or lost one never does; every send is answered.
    expect(new Set(taken).size).toBeLessThan(200)
    expect(taken.length).toBeGreaterThan(new Set(taken).size)
    expect(heard).toHaveLength(200)
  })

  it("refuses sends over the task or byte limit with too-large", async () => {
    const { heard, taken } = await sendMany(1, { ...noFaults, maxSendTasks: 2 })
    expect(heard.filter((h) => h.endsWith(":too-large"))).toHaveLength(100)
    expect(taken).toHaveLength(100)
  })

  it("delivers perfectly once calm", async () => {
    const { taken, heard } = await sendMany(3, faulty, 100)
    const late = heard.filter((h) => Number(h.split(":")[0]) >= 100)
    expect(late.every((h) => h.endsWith(":ok"))).toBe(true)
    for (let seq = 100; seq < 200; seq++) expect(taken).toContain(seq)
  })

  it("a crashed tracker's calls in flight fail as closed, later ones as unreachable", async () => {
    const outcome = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const net = yield* makeFaultNetwork({ seed: 1, policy: noFaults })
          const scope = yield* Scope.make()
          // A tracker that answers a heartbeat only when its scope closes,
          // the way a real one answers its waiting callers.
          const tracker = {
            instanceId: "i",
            heartbeat: () =>
              Effect.callback<never, RejectedError>((resume) => {
                Effect.runSync(
                  Scope.addFinalizer(
                    scope,
                    Effect.sync(() =>
                      resume(Effect.fail(new RejectedError({ reason: "unknown-instance", message: "closed" })))
                    )
                  )
                )
              })
          } as unknown as Tracker
          net.addTracker(tracker)
          const link = net.link("i")
          const heartbeat = { instanceId: "i", workerId: "w", slots: 1, freeSlots: 1, queueLength: 0, idle: true }
          const inFlight = yield* Effect.forkChild(Effect.flip(link.heartbeat(heartbeat)))
          yield* Effect.yieldNow
          net.crashTracker("i")
          yield* Scope.close(scope, Exit.void)
          const first = yield* Fiber.join(inFlight)
          const later = yield* Effect.flip(link.heartbeat(heartbeat))
          return [first.message, "reason" in first ? first.reason : "", later.reason]
        })
      )
    )
    expect(outcome[1]).toBe("closed")
    expect(outcome[2]).toBe("unreachable")
  })
})
