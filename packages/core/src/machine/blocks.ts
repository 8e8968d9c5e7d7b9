import { TaskKind, TaskStatus } from "../model/status.ts"
import type { TaskBody } from "../model/task.ts"
import { LiveTask, type MachineState, type NameCounter, type RunState } from "./state.ts"
import { nameCounter } from "./tasks.ts"

/**
 * The children one map call created, while they wait. Child i is task "<parentId>.<firstNumber + i>"
 * with seq firstSeq + i and body bodies[bodyOffset + i]. A child becomes a LiveTask only when the
 * dispatcher takes it out, or when a message names it before that; until then it costs the machine its
 * body and nothing else, however many children a call maps (R-MAP-4).
 */
export class ChildBlock {
  readonly parentId: string
  readonly run: RunState
  readonly counter: NameCounter
  readonly firstSeq: number
  readonly firstNumber: number
  readonly bodies: ReadonlyArray<TaskBody>
  readonly bodyOffset: number
  readonly size: number
  /** Index of the next child the dispatcher takes out. */
  next = 0
  /**
   * Children that are LiveTasks while the block still holds them, by index: those named before their
   * turn, and in the step that created the block every child made live (its row is the block's insert).
   */
  taken: Map<number, LiveTask> | undefined = undefined
  /** Created in the step being built: every child's row goes in this step's write as an insert. */
  fresh = true
  /** "<parentId>." */
  private readonly idPrefix: string

  constructor(
    parentId: string,
    run: RunState,
    counter: NameCounter,
    firstSeq: number,
    firstNumber: number,
    bodies: ReadonlyArray<TaskBody>,
    bodyOffset: number,
    size: number
  ) {
    this.parentId = parentId
    this.run = run
    this.counter = counter
    this.firstSeq = firstSeq
    this.firstNumber = firstNumber
    this.bodies = bodies
    this.bodyOffset = bodyOffset
    this.size = size
    this.idPrefix = `${parentId}.`
  }

  idOf(index: number): string {
    return this.idPrefix + (this.firstNumber + index)
  }

  bodyOf(index: number): TaskBody {
    return this.bodies[this.bodyOffset + index] as TaskBody
  }
}

/**
 * Children `firstNumber`.. of `parent`, Waiting, with bodies[bodyOffset ..]: counted at once, queued as one
 * entry, inserted by this step's write (R-MAP-1).
 */
export const createBlock = (
  state: MachineState,
  parent: LiveTask,
  name: string,
  bodies: ReadonlyArray<TaskBody>,
  bodyOffset: number,
  firstNumber: number,
  size: number
): void => {
  const counter = nameCounter(state, name)
  counter.total += size
  counter.waiting += size
  const run = parent.run
  const block = new ChildBlock(parent.id, run, counter, state.nextSeq, firstNumber, bodies, bodyOffset, size)
  state.nextSeq += size
  run.created += size
  run.live += size
  state.waitingCount += size
  state.waiting.push(block)
  state.dirty.push(block)
  const siblings = state.blocks.get(parent.id)
  if (siblings === undefined) state.blocks.set(parent.id, [block])
  else siblings.push(block)
}

/** Child `index` as a LiveTask, still Waiting. A fresh block keeps it, as its row is written with the block's. */
const makeLive = (state: MachineState, block: ChildBlock, index: number, keep: boolean): LiveTask => {
  const task = new LiveTask(
    block.idOf(index),
    block.firstSeq + index,
    block.run,
    TaskKind.Sub,
    block.bodyOf(index),
    block.counter
  )
  state.tasks.set(task.id, task)
  if (block.fresh) task.dirty = 2
  if (keep || block.fresh) (block.taken ??= new Map()).set(index, task)
  return task
}

const isWaiting = (task: LiveTask): boolean => task.queued && task.status === TaskStatus.Waiting

/** The block holds no child any more: it cannot be found by id. */
const close = (state: MachineState, block: ChildBlock): void => {
  const siblings = state.blocks.get(block.parentId)
  if (siblings === undefined) return
  const at = siblings.indexOf(block)
  if (at >= 0) siblings.splice(at, 1)
  if (siblings.length === 0) state.blocks.delete(block.parentId)
}

/** Passes over children made live before their turn that are no longer Waiting (a kill). */
const skipGone = (block: ChildBlock): void => {
  for (
    let early = block.taken?.get(block.next);
    early !== undefined && !isWaiting(early);
    early = block.taken?.get(block.next)
  ) {
    if (!block.fresh) block.taken?.delete(block.next)
    block.next++
  }
}

/** True while the block still holds a Waiting child. */
export const hasChild = (state: MachineState, block: ChildBlock): boolean => {
  skipGone(block)
  if (block.next < block.size) return true
  close(state, block)
  return false
}

/**
 * Takes the next Waiting child out of the block, in order, as a LiveTask off the queue; undefined when none is left.
 */
export const takeChild = (state: MachineState, block: ChildBlock): LiveTask | undefined => {
  if (!hasChild(state, block)) return undefined
  const index = block.next++
  const early = block.taken?.get(index)
  if (early === undefined) return makeLive(state, block, index, false)
  if (!block.fresh) block.taken?.delete(index)
  early.queued = false
  return early
}

/** Reads a canonical child number ("17", not "017" or "1e1"), or -1. */
const childNumber = (text: string): number => {
  const number = Number(text)
  return Number.isSafeInteger(number) && number > 0 && String(number) === text ? number : -1
}

/** A child still held by a block, made live (and left queued, in its turn) so it can be named. */
const heldChild = (state: MachineState, id: string): LiveTask | undefined => {
  const dot = id.lastIndexOf(".")
  if (dot <= 0) return undefined
  const siblings = state.blocks.get(id.slice(0, dot))
  if (siblings === undefined) return undefined
  const number = childNumber(id.slice(dot + 1))
  for (const block of siblings) {
    const index = number - block.firstNumber
    if (index < block.next || index >= block.size) continue
    // Made live before its turn: had it not ended, state.tasks would have held it.
    if (block.taken?.has(index)) return undefined
    const task = makeLive(state, block, index, true)
    task.queued = true
    return task
  }
  return undefined
}

/** A live task by id, whether or not it has left its block yet. */
export const findTask = (state: MachineState, id: string): LiveTask | undefined =>
  state.tasks.get(id) ?? heldChild(state, id)

/** Takes every child still held by blocks of `run` out, for `each` to end them (a run aborted). */
export const drainBlocks = (state: MachineState, run: RunState, each: (task: LiveTask) => void): void => {
  for (const entry of state.waiting) {
    if (!(entry instanceof ChildBlock) || entry.run !== run) continue
    for (let task = takeChild(state, entry); task !== undefined; task = takeChild(state, entry)) each(task)
  }
}

/** After the write of the block's first step: its children live on their own, as any task. */
export const settleBlock = (block: ChildBlock): void => {
  block.fresh = false
  const taken = block.taken
  if (taken === undefined) return
  for (const [index, task] of taken) {
    task.dirty = 0
    if (index < block.next) taken.delete(index)
  }
  if (taken.size === 0) block.taken = undefined
}
