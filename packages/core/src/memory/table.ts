import type { TaskBody, TaskRow, TaskUpdate } from "../model/task.ts"
import type { StoredResult } from "../ports/task-store.ts"

/** Fields most rows leave at their default; a row keeps them only when one is not. */
interface RareFields {
  failures: number
  redeliveries: number
  childCount: number
  dueAt: number | null
  lastError: string | null
  resultCut: boolean
}

const isDefault = (row: TaskUpdate): boolean =>
  row.failures === 0 &&
  row.redeliveries === 0 &&
  row.childCount === 0 &&
  row.dueAt === null &&
  row.lastError === null &&
  !row.resultCut

/** Strings that repeat across rows (task names, worker ids), stored once and referred to by number. */
class Dictionary {
  private readonly values: string[] = []
  private readonly numbers = new Map<string, number>()
  /** Consecutive rows mostly repeat the same string: the last one is checked first. */
  private lastValue: string | undefined = undefined
  private lastNumber = -1
  numberOf(value: string): number {
    if (value === this.lastValue) return this.lastNumber
    let number = this.numbers.get(value)
    if (number === undefined) {
      number = this.values.length
      this.values.push(value)
      this.numbers.set(value, number)
    }
    this.lastValue = value
    this.lastNumber = number
    return number
  }
  valueOf(number: number): string {
    return this.values[number] as string
  }
}

const grown = <T extends Int32Array | Uint8Array>(column: T, capacity: number): T => {
  const next = new (column.constructor as new (length: number) => T)(capacity)
  next.set(column)
  return next
}

/**
 * The task rows of one instance, by seq, one column per field: a row costs a few dozen bytes beside its
 * id, body and result, instead of an object of sixteen fields. Rows are copied in and out; nothing
 * outside holds a reference into the table.
 */
export class TaskTable {
  private readonly ids: Array<string | undefined> = []
  private readonly bodies: Array<TaskBody | undefined> = []
  private readonly results: Array<string | null> = []
  private runs = new Int32Array(0)
  private names = new Int32Array(0)
  private kinds = new Uint8Array(0)
  private statuses = new Uint8Array(0)
  /** Worker number + 1; 0 is no worker. */
  private workers = new Int32Array(0)
  private attempts = new Int32Array(0)
  private readonly rare = new Map<number, RareFields>()
  private readonly nameDictionary = new Dictionary()
  private readonly workerDictionary = new Dictionary()
  /** Seq by id, built the first time a row is looked up by id, then kept up to date. */
  private bySeqOfId: Map<string, number> | undefined = undefined

  /** One past the highest seq ever stored. */
  get length(): number {
    return this.ids.length
  }

  has(seq: number): boolean {
    return this.ids[seq] !== undefined
  }

  idAt(seq: number): string | undefined {
    return this.ids[seq]
  }

  private ensureCapacity(seq: number): void {
    if (seq < this.runs.length) return
    const capacity = Math.max(1024, this.runs.length * 2, seq + 1)
    this.runs = grown(this.runs, capacity)
    this.names = grown(this.names, capacity)
    this.kinds = grown(this.kinds, capacity)
    this.statuses = grown(this.statuses, capacity)
    this.workers = grown(this.workers, capacity)
    this.attempts = grown(this.attempts, capacity)
  }

  /** Stores a new row; the caller checked that its seq is free. */
  insert(row: TaskRow): void {
    const seq = row.seq
    this.ensureCapacity(seq)
    this.ids[seq] = row.id
    this.bodies[seq] = row.body
    this.runs[seq] = row.run
    this.names[seq] = this.nameDictionary.numberOf(row.name)
    this.kinds[seq] = row.kind
    this.bySeqOfId?.set(row.id, seq)
    this.update(row)
  }

  /** Writes the fields that change; the caller checked that the row is stored. */
  update(row: TaskUpdate): void {
    const seq = row.seq
    this.statuses[seq] = row.status
    this.workers[seq] = row.worker === null ? 0 : this.workerDictionary.numberOf(row.worker) + 1
    this.attempts[seq] = row.attempt
    this.results[seq] = row.result
    if (!isDefault(row)) {
      const { failures, redeliveries, childCount, dueAt, lastError, resultCut } = row
      this.rare.set(seq, { failures, redeliveries, childCount, dueAt, lastError, resultCut })
    } else if (this.rare.size > 0) this.rare.delete(seq)
  }

  remove(seq: number): void {
    const id = this.ids[seq]
    if (id === undefined) return
    this.bySeqOfId?.delete(id)
    this.ids[seq] = undefined
    this.bodies[seq] = undefined
    this.results[seq] = null
    this.rare.delete(seq)
  }

  /** Removes every row of these runs. */
  removeRuns(runs: ReadonlySet<number>): void {
    for (let seq = 0; seq < this.ids.length; seq++) if (this.has(seq) && runs.has(this.runs[seq]!)) this.remove(seq)
  }

  seqOf(id: string): number | undefined {
    if (this.bySeqOfId === undefined) {
      this.bySeqOfId = new Map()
      for (let seq = 0; seq < this.ids.length; seq++) {
        const stored = this.ids[seq]
        if (stored !== undefined) this.bySeqOfId.set(stored, seq)
      }
    }
    return this.bySeqOfId.get(id)
  }

  runAt(seq: number): number {
    return this.runs[seq]!
  }

  statusAt(seq: number): number {
    return this.statuses[seq]!
  }

  nameAt(seq: number): string {
    return this.nameDictionary.valueOf(this.names[seq]!)
  }

  workerAt(seq: number): string | null {
    const number = this.workers[seq]!
    return number === 0 ? null : this.workerDictionary.valueOf(number - 1)
  }

  /** A copy of the row at seq; the caller checked that it is stored. */
  rowAt(seq: number): TaskRow {
    const rare = this.rare.get(seq)
    return {
      id: this.ids[seq] as string,
      seq,
      run: this.runs[seq]!,
      name: this.nameAt(seq),
      kind: this.kinds[seq] as TaskRow["kind"],
      body: this.bodies[seq] as TaskBody,
      status: this.statuses[seq] as TaskRow["status"],
      worker: this.workerAt(seq),
      attempt: this.attempts[seq]!,
      failures: rare?.failures ?? 0,
      redeliveries: rare?.redeliveries ?? 0,
      childCount: rare?.childCount ?? 0,
      dueAt: rare?.dueAt ?? null,
      result: this.results[seq] ?? null,
      resultCut: rare?.resultCut ?? false,
      lastError: rare?.lastError ?? null
    }
  }

  resultAt(seq: number): StoredResult {
    const rare = this.rare.get(seq)
    return {
      id: this.ids[seq] as string,
      seq,
      name: this.nameAt(seq),
      status: this.statuses[seq]!,
      result: this.results[seq] ?? null,
      resultCut: rare?.resultCut ?? false,
      lastError: rare?.lastError ?? null
    }
  }
}
