export { LOCAL_WORKER, taskfold, type TaskfoldOptions } from "./taskfold.ts"
export {
  makeOutcomeTable,
  makeSqlStore,
  MAX_BOUND_PARAMETERS,
  readInstanceRow,
  type OutcomeRecord,
  type SqlStorageLike
} from "./sql-store.ts"
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
