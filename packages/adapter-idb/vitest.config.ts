import { playwright } from "@vitest/browser-playwright"
import { defineConfig } from "vitest/config"
import { chromiumLaunchOptions } from "./test/chromium.ts"

/**
 * Runtime tests of @taskfold/idb (the root config runs test/node under Node):
 * - chromium: vitest browser mode in the system's Chromium, real IndexedDB and Web Workers;
 * - e2e: Node drives Chromium against the vite-served demo page and reloads it mid-run.
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "chromium",
          include: ["test/browser/**/*.test.ts"],
          testTimeout: 60_000,
          browser: {
            enabled: true,
            headless: true,
            provider: playwright({ launchOptions: chromiumLaunchOptions }),
            instances: [{ browser: "chromium" }]
          }
        }
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 180_000,
          hookTimeout: 60_000
        }
      }
    ]
  }
})
