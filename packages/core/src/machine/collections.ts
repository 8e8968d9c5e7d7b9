/** A FIFO queue with O(1) push and shift; it compacts its backing array as it drains. */
export class Fifo<T> {
  private items: Array<T | undefined> = []
  private head = 0

  get size(): number {
    return this.items.length - this.head
  }

  push(item: T): void {
    this.items.push(item)
  }

  peek(): T | undefined {
    return this.items[this.head]
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head]
    this.items[this.head++] = undefined
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i] as T
  }
}

/**
 * A Map whose entries come and go all the time (live tasks). V8 keeps a Map's discarded hash tables
 * linked to their successors, for iterators still running over them; once one of those tables sits in
 * the old generation, every later table and everything its entries refer to survive young collections
 * until the next full one, and the heap fills with garbage. Moving the entries to a fresh Map every few
 * thousand deletions cuts that chain; the copy keeps insertion order.
 */
export class ChurningMap<K, V> {
  private map = new Map<K, V>()
  private deletions = 0

  get size(): number {
    return this.map.size
  }

  get(key: K): V | undefined {
    return this.map.get(key)
  }

  has(key: K): boolean {
    return this.map.has(key)
  }

  set(key: K, value: V): void {
    this.map.set(key, value)
  }

  delete(key: K): boolean {
    if (!this.map.delete(key)) return false
    if (++this.deletions >= 4096) {
      this.deletions = 0
      this.map = new Map(this.map)
    }
    return true
  }

  values(): IterableIterator<V> {
    return this.map.values()
  }
}

/** A binary min-heap ordered by a numeric key. */
export class MinHeap<T> {
  private readonly items: T[] = []
  private readonly key: (item: T) => number
  constructor(key: (item: T) => number) {
    this.key = key
  }

  get size(): number {
    return this.items.length
  }

  peek(): T | undefined {
    return this.items[0]
  }

  push(item: T): void {
    const items = this.items
    items.push(item)
    let i = items.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (this.key(items[parent] as T) <= this.key(item)) break
      items[i] = items[parent] as T
      i = parent
    }
    items[i] = item
  }

  pop(): T | undefined {
    const items = this.items
    const top = items[0]
    const last = items.pop()
    if (items.length === 0 || last === undefined) return top
    let i = 0
    const n = items.length
    for (;;) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && this.key(items[right] as T) < this.key(items[left] as T) ? right : left
      if (this.key(items[child] as T) >= this.key(last)) break
      items[i] = items[child] as T
      i = child
    }
    items[i] = last
    return top
  }
}

/** UTF-8 length of a string, without allocating. */
export const utf8Length = (text: string): number => {
  let bytes = text.length
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) continue
    if (code < 0x800) bytes += 1
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      bytes += 2
      i++
    } else bytes += 2
  }
  return bytes
}

/** mulberry32: a small deterministic generator; its whole state is one uint32 kept in the machine. */
export const nextRandom = (seed: number): [value: number, seed: number] => {
  const next = (seed + 0x6d2b79f5) | 0
  let t = next
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return [((t ^ (t >>> 14)) >>> 0) / 4294967296, next]
}
