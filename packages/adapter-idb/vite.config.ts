import { fileURLToPath } from "node:url"
import { defineConfig } from "vite"

/** The demo page: `npx -y pnpm@12.21.0 --filter @taskfold/idb dev`, then open the printed 127.0.0.1 address. */
export default defineConfig({
  root: fileURLToPath(new URL("./demo", import.meta.url)),
  server: { host: "127.0.0.1", port: 5173 },
  preview: { host: "127.0.0.1", port: 4173 },
  // Both the page and its Web Workers import these: bundle them at start, so no reload happens mid-run.
  optimizeDeps: { include: ["effect", "idb"] },
  worker: { format: "es" },
  build: { outDir: fileURLToPath(new URL("./dist/demo", import.meta.url)), emptyOutDir: true, target: "es2023" }
})
