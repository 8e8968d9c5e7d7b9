// Scripts need Node 24 (effect 4, vitest 5); pnpm puts the workspace's own Node first on PATH.
const major = Number(process.versions.node.split(".")[0])
if (major < 24) {
  console.error(
    `taskfold needs Node 24, this is Node ${process.versions.node}. ` +
      "Run the scripts through pnpm (npx -y pnpm@12.21.0 <script>) so the workspace's Node 24 is used."
  )
  process.exit(1)
}
