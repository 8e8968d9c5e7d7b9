import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach } from "vitest"
import { openSqliteDriver, openSqliteStore, type SqliteDriver, type SqliteStore } from "../src/index.ts"

/**
 * Temporary database files for one test file: each `path()` is a fresh file in its own folder, and
 * after every test the stores opened through `open` are closed and the folders (with their -wal and
 * -shm files) removed.
 */
export const tempDatabases = () => {
  const folders: string[] = []
  const stores: Array<SqliteStore | SqliteDriver> = []
  afterEach(() => {
    for (const store of stores.splice(0)) store.close()
    for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true })
  })
  const path = (): string => {
    const folder = mkdtempSync(join(tmpdir(), "taskfold-sqlite-"))
    folders.push(folder)
    return join(folder, "tasks.db")
  }
  const open = (file: string | ":memory:"): SqliteStore => {
    const store = openSqliteStore(file)
    stores.push(store)
    return store
  }
  const driver = (file: string | ":memory:"): SqliteDriver => {
    const opened = openSqliteDriver(file)
    stores.push(opened)
    return opened
  }
  return { path, open, driver }
}
