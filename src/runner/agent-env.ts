import type { JobSpec } from "./port.js";

// The variables every agent gets, from either runner (SPEC §9): what it is working on and where
// its contract goes. `wave_id` is passed resolved: the built-in runner falls back to its own.

export type AgentEnvSpec = Pick<JobSpec, "item_id" | "job_id" | "phase" | "attempt" | "run_instance" | "prompt_file" | "contract_file">;

export function agentEnv(spec: AgentEnvSpec, waveId: string): Record<string, string> {
  return {
    DX_BATCH_WAVE_ID: waveId,
    DX_BATCH_ITEM_ID: spec.item_id,
    DX_BATCH_JOB_ID: spec.job_id,
    DX_BATCH_PHASE: spec.phase,
    DX_BATCH_ATTEMPT: String(spec.attempt),
    DX_BATCH_RUN_INSTANCE: spec.run_instance,
    DX_BATCH_PROMPT_FILE: spec.prompt_file,
    DX_BATCH_CONTRACT_FILE: spec.contract_file,
  };
}
