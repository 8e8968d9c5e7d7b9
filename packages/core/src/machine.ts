// The pure machine: `step(state, events, now)`, for tools and tests that drive it without a tracker.
export { createInstance, restoreInstance, type NewInstance } from "./machine/instance.ts"
export { instanceRow, step } from "./machine/step.ts"
export type { MachineEvent, MachineState, Reply, ReplyValue, StandingWorker, StepOutput } from "./machine/state.ts"
