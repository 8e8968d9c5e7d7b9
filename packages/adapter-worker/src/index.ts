export { LOCAL_WORKER, SubmitRequest, taskfold, type TaskfoldOptions } from "./taskfold.ts"
export { makeOutcomeTable, makeSqlStore, MAX_BOUND_PARAMETERS, readInstanceRow, type OutcomeRecord, type SqlStorageLike } from "./sql-store.ts"
export {
  AUTHORIZATION,
  bearer,
  DecodeFailure,
  decodeContextAppend,
  decodeHeartbeat,
  decodeKillRequest,
  decodeMapRequest,
  decodePullRequest,
  decodeReportBatch,
  decodeTaskBatch,
  encodeBody,
  encodeMapRequest,
  encodeTaskBatch,
  guard,
  httpTrackerLink,
  trackerRoutes,
  type Fetch,
  type HttpLinkOptions,
  type JsonBody
} from "./http.ts"
export { laneId, makeLaneSet, runLane, type LaneItem, type LaneSet, type LaneStart } from "./lanes.ts"
