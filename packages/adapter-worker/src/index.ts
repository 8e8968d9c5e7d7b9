export { LOCAL_WORKER, taskfold, type TaskfoldOptions } from "./taskfold.ts"
export {
  busyWorkers,
  durableObjectDriver,
  makeDurableObjectStore,
  makeOutcomeTable,
  MAX_BOUND_PARAMETERS,
  readInstanceRow,
  type OutcomeRecord,
  type SqlStorageLike
} from "./sql-driver.ts"
export {
  LANE_RUN_PATH,
  LaneHeartbeat,
  laneId,
  LaneItem,
  LanePoll,
  LanePollReply,
  LaneStart,
  makeLaneSet,
  runLane,
  type LaneSet
} from "./lanes.ts"
