// A TypeDoc plugin for the run of node.json: names each entry point's module after the import path users write
// (`@taskfold/core/wire`), read from its package.json, instead of its folder (`core/src/wire`), and tags the
// project so that merge.json lays its modules beside @taskfold/worker's instead of under one "taskfold" module.
import { existsSync, readFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { Comment, CommentTag, Converter, ReflectionKind } from "typedoc"

/** The import path of `file` by its package's `exports`, if it is one of them. */
const importPath = (file) => {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, "package.json")
    if (!existsSync(manifest)) continue
    const { name, exports } = JSON.parse(readFileSync(manifest, "utf8"))
    for (const [key, target] of Object.entries(exports ?? {}))
      if (typeof target === "string" && resolve(dir, target) === resolve(file)) return name + key.slice(1)
    return undefined
  }
  return undefined
}

export const load = (app) => {
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    for (const module of context.project.getReflectionsByKind(ReflectionKind.Module)) {
      const file = context.getSymbolFromReflection(module)?.declarations?.[0]?.getSourceFile().fileName
      const name = file === undefined ? undefined : importPath(file)
      if (name !== undefined) module.name = name
    }
    const merge = new CommentTag("@mergeModuleWith", [{ kind: "text", text: "<project>" }])
    context.project.comment = new Comment([], [merge])
  })
}
