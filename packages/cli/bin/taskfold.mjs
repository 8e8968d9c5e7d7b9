#!/usr/bin/env node
// The `taskfold` command. The CLI itself is TypeScript, which Node 24 runs as it is; an older Node on
// PATH gets one clear line instead of a syntax error.
const major = Number(process.versions.node.split(".")[0])
if (major < 24) {
  console.error(
    `taskfold needs Node 24, this is Node ${process.versions.node}. ` +
      "Run it through pnpm (npx -y pnpm@12.21.0 exec taskfold …) so the workspace's Node 24 is used."
  )
  process.exit(1)
}
try {
  await import("../src/main.ts")
} catch (error) {
  console.error(`taskfold: cannot start: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`)
  process.exit(1)
}
