import type { ProviderConfig } from "../../config/types.js";
import type { ProviderAvailability } from "../port.js";
import { available, checkBinary, hasEnv, maxParallel, pickModel, runQuick, unavailable } from "./common.js";
import type { LaunchContext, LaunchPlan, PreflightOptions, Provider } from "./types.js";

// Codex headless (REFERENCE §3): `exec` reads the prompt from stdin (`-`), is sandboxed to writes
// inside the worktree, and streams JSON events. With no auth it reconnects forever, so preflight
// insists on a credential.

export const CODEX_BIN = "codex";
export const CODEX_DEFAULT_MODEL = "gpt-5-codex";

export const codexArgv = (model: string, worktree: string): string[] => [
  CODEX_BIN,
  "exec",
  "--json",
  "-m",
  model,
  "-C",
  worktree,
  "-s",
  "workspace-write",
  "-",
];

export function createCodex(cfg: ProviderConfig | undefined): Provider {
  const name = "codex";
  return {
    name,
    kind: "builtin",
    max_parallel: maxParallel(cfg),
    default_model: cfg?.model ?? CODEX_DEFAULT_MODEL,
    plan(ctx: LaunchContext): Promise<LaunchPlan> {
      const model = pickModel(ctx, cfg, CODEX_DEFAULT_MODEL);
      const argv = codexArgv(model, ctx.worktree);
      return Promise.resolve({ argv, stdin: "prompt", env: { ...cfg?.env }, unset_env: [], argv_for_meta: argv, model });
    },
    async preflight(o: PreflightOptions): Promise<ProviderAvailability> {
      const bin = await checkBinary(name, CODEX_BIN, o.env, o.timeout_ms);
      if (!bin.ok) return bin.result;
      const env = { ...o.env, ...cfg?.env };
      if (hasEnv(env, "CODEX_API_KEY")) return available(name);
      if ((await runQuick([bin.path, "login", "status"], env, o.timeout_ms)).ok) return available(name);
      return unavailable(name, `${name}_auth_missing`, "no CODEX_API_KEY and `codex login status` fails");
    },
  };
}
