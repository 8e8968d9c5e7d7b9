declare namespace Cloudflare {
  interface Env {
    TRACKER: DurableObjectNamespace<import("./worker.ts").TaskfoldTracker>
    PROBE: DurableObjectNamespace<import("./worker.ts").StoreProbe>
    WORKERS: Fetcher
    TASKFOLD_SECRET: string
  }
}
