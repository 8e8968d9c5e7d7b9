#!/usr/bin/env node
// The `taskfold` command. In the workspace it runs the TypeScript source, which Node 24 runs as it is;
// installed, the built JavaScript. An older Node on PATH gets one clear line instead of a syntax error.
const major = Number(process.versions.node.split(".")[0])
if (major < 24) {
  console.error(
    `taskfold needs Node 24, this is Node ${process.versions.node}. ` +
      "Install Node 24 or later (in this repository: npx -y pnpm@12.21.0 exec taskfold …)."
  )
  process.exit(1)
}
const { existsSync } = await import("node:fs")
const source = new URL("../src/main.ts", import.meta.url)
try {
  await import(existsSync(source) ? source.href : new URL("../dist/main.js", import.meta.url).href)
} catch (error) {
  console.error(`taskfold: cannot start: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`)
  process.exit(1)
}
