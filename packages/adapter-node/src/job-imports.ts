import { registerHooks } from "node:module"
import { join } from "node:path"
import { pathToFileURL } from "node:url"

/** What job modules import from taskfold's side: the packages a job shares with the command that runs it. */
const shared = /^(?:@taskfold\/[^/]+|effect)(?:\/.*)?$/

let installed = false

/**
 * Lets a job module anywhere import `@taskfold/*` and `effect`. Node resolves a bare specifier from the
 * importing file, so a job in a folder with no node_modules (a script in /tmp, a project where taskfold
 * came through npx or a global install) would not find them. When Node's own resolution fails for one of
 * those, this tries the user's project (the working directory), then the copy this running taskfold uses,
 * so the job gets the very module instances the command has. Node's answer wins whenever there is one.
 * Hooks are per thread: every thread that loads job modules calls this, once.
 */
export const resolveJobImports = (): void => {
  if (installed) return
  installed = true
  registerHooks({
    resolve: (specifier, context, nextResolve) => {
      try {
        return nextResolve(specifier, context)
      } catch (error) {
        if (!shared.test(specifier) || (error as { code?: unknown }).code !== "ERR_MODULE_NOT_FOUND") throw error
        // A directory URL needs its trailing slash: node_modules is looked up from inside it.
        for (const parentURL of [pathToFileURL(join(process.cwd(), "/")).href, import.meta.url]) {
          try {
            return nextResolve(specifier, { ...context, parentURL })
          } catch {
            // not there either: try the next place, and report Node's own error if none has it
          }
        }
        throw error
      }
    }
  })
}
