declare namespace Cloudflare {
  interface Env {
    TRACKER: DurableObjectNamespace<import("./worker.ts").TaskfoldTracker>
    PROBE: DurableObjectNamespace<import("./worker.ts").StoreProbe>
    LANE_PROBE: DurableObjectNamespace<import("./conformance.ts").LaneProbe>
    WORKERS: Fetcher
    TASKFOLD_SECRET: string
  }
}
