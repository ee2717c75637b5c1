import { loadConfig } from "../config/load.js";
import type { ResolvedConfig } from "../config/types.js";
import { isValidWaveId } from "../core/ids.js";
import { DxError } from "../errors.js";
import { createLayout, type Layout } from "../store/layout.js";

// The composition root's first step: resolve the configuration once, then the artifact layout.

export interface AppContext {
  config: ResolvedConfig;
  configSource: string | null;
  layout: Layout;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface ConfigFlags {
  max_parallel?: number;
  max_attempts?: number;
  stall_minutes?: number;
  exec_process_cap?: number;
  require_review?: boolean;
  repo?: string;
  base?: string;
}

export function openContext(ctx: { env: NodeJS.ProcessEnv; cwd: string }, o: { config?: string; flags?: ConfigFlags }): AppContext {
  const flags: Record<string, unknown> = {};
  if (o.config !== undefined) flags.config = o.config;
  for (const [k, v] of Object.entries(o.flags ?? {})) if (v !== undefined) flags[k] = v;
  const { config, source } = loadConfig({ flags, cwd: ctx.cwd, env: ctx.env });
  return { config, configSource: source, layout: createLayout(config.artifact_dir), env: ctx.env, cwd: ctx.cwd };
}

export function requireWaveId(id: string | undefined): string {
  if (id === undefined) throw new DxError("usage", "--wave-id is required", { remedy: "pass --wave-id <id>" });
  if (!isValidWaveId(id)) {
    throw new DxError("invalid_wave_id", `wave id ${JSON.stringify(id)} does not match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`);
  }
  return id;
}
