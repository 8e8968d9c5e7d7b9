import { defineConfig } from "vitest/config"

// Node-side tests. Adapters whose tests run in another runtime (workerd, Chromium) have their own
// config and a `test:runtime` script, which the root `test` script runs after this one.
export default defineConfig({
  test: {
    include: [
      "packages/core/**/*.test.ts",
      "packages/adapter-node/**/*.test.ts",
      "packages/cli/**/*.test.ts",
      "packages/adapter-idb/test/node/**/*.test.ts",
      "examples/**/*.test.ts",
      "test/**/*.test.ts"
    ],
    exclude: ["**/node_modules/**"],
    testTimeout: 60_000
  }
})
