import type { WorkspacePolicy } from "../../config/types.js";
import type { ProviderRegistry } from "../providers/index.js";
import type { JobRef } from "../port.js";

// What every part of the built-in runner (start, check, stop, files) shares: its options resolved.

export interface BuiltinContext {
  readonly logDir: string;
  readonly clock: () => number;
  /** SIGTERM → SIGKILL grace for stop and for a job over max runtime. */
  readonly graceMs: number;
  readonly preflightTimeoutMs: number;
  readonly maxLogBytes: number;
  readonly registry: ProviderRegistry;
  readonly workspace: WorkspacePolicy;
  readonly env: NodeJS.ProcessEnv;
  readonly waveId: string | undefined;
  /** Tell the onExit listeners that a job this process launched has exited. */
  notifyExit(ref: JobRef, exitCode: number | null): void;
}

/** Without a pid after this long, a job whose launcher vanished mid-start is lost, not launching. */
export const LAUNCH_GRACE_MS = 30_000;
/** A running job with no output yet is "launching" for its first seconds. */
export const FIRST_OUTPUT_GRACE_MS = 10_000;
