export { LOCAL_WORKER, taskfold, type Env, type TaskfoldDeployment, type TaskfoldOptions } from "./taskfold.ts"
export type { TaskfoldTrackerObject } from "./taskfold.ts"
export {
  durableObjectDriver,
  makeDurableObjectStore,
  MAX_BOUND_PARAMETERS,
  readInstanceRow,
  type SqlStorageLike
} from "./sql-driver.ts"
export {
  LANE_RUN_PATH,
  LaneHeartbeat,
  laneId,
  LaneItem,
  LanePoll,
  LanePollReply,
  laneResponse,
  LaneStart,
  makeLaneSet,
  runLane,
  type LaneSet
} from "@taskfold/core/wire"
