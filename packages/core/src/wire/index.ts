export { decodeMessage, encodeJson, parseJson, type DecodeFailure } from "./codec.ts"
export {
  DEFAULT_MAX_BODY_BYTES,
  KillBody,
  paths,
  ResultsQuery,
  SubmitRequest,
  WorkerRegistration,
  type InstanceCall,
  type WireError
} from "./protocol.ts"
export {
  answer,
  asWorker,
  callerOf,
  guardedApp,
  makeTrackerApp,
  operatorOnly,
  readMessage,
  wireError,
  type AppOptions,
  type TrackerApi
} from "./tracker-app.ts"
export { makeWorkerApp } from "./worker-app.ts"
export {
  httpPull,
  httpTrackerClient,
  httpTrackerLink,
  httpWorkerTransport,
  request,
  type ClientError,
  type HttpClientOptions,
  type InstanceStatus
} from "./client.ts"
export {
  LOCAL_WORKER_ID,
  makeTrackerServer,
  type JobTable,
  type TrackerServer,
  type TrackerServerOptions
} from "./tracker-server.ts"
export { startHttpWorker, type HttpWorkerOptions, type RunningWorker } from "./http-worker.ts"
export {
  makeWebWorkerNetwork,
  type OutcomeOwner,
  type RemoteWorker,
  type SpawnOptions,
  type WebWorkerNetwork
} from "./port-network.ts"
export { transferable, type Port, type WorkerLike } from "./port-protocol.ts"
export { serveWebWorker, type ServeOptions } from "./port-worker.ts"
export {
  LANE_DONE,
  LANE_RUN_PATH,
  LaneHeartbeat,
  laneId,
  LaneItem,
  lanePath,
  LanePoll,
  LanePollReply,
  laneResponse,
  LaneStart,
  makeLaneSet,
  runLane,
  type LaneRunOptions,
  type LaneSet,
  type LaneSetOptions
} from "./lanes.ts"
export {
  type Caller,
  credentialWorkerId,
  makeCredentialCheck,
  MIN_SECRET_LENGTH,
  secretProblem,
  workerCredential
} from "./credentials.ts"
