// The pure core: no I/O, no clock, no randomness. Time, ids and results enter only inside events.
export * from "./status.js";
export * from "./reasons.js";
export * from "./events.js";
export * from "./state.js";
export * from "./effects.js";
export * from "./policy.js";
export * from "./contract.js";
export * from "./ids.js";
export { step, fold, initialState, itemById, CoreInvariantError, type StepResult } from "./step.js";
export { planDispatch, type DispatchIntent, type PlanResult } from "./plan.js";
export { itemNextAction } from "./item-next-action.js";
