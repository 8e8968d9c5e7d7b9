// TypeDoc (docs:api) needs TypeScript's JS compiler API, which the workspace's TypeScript 7 (the native port)
// does not have: typedoc gets a TypeScript 5 of its own instead of its peer, and tsc stays 7.
const readPackage = (pkg) => {
  if (pkg.name === "typedoc") {
    if (pkg.peerDependencies !== undefined) delete pkg.peerDependencies.typescript
    pkg.dependencies = { ...pkg.dependencies, typescript: "5.9.3" }
  }
  return pkg
}

export const hooks = { readPackage }
