import type { ProviderConfig } from "../../config/types.js";
import { parseJsonObject } from "../fs-util.js";
import type { ProviderAvailability } from "../port.js";
import { available, checkBinary, hasEnv, maxParallel, pickModel, runQuick, unavailable } from "./common.js";
import type { LaunchContext, LaunchPlan, PreflightOptions, Provider } from "./types.js";

// Claude Code headless (REFERENCE §3). acceptEdits lets it edit the worktree unattended without
// the root-only --dangerously-skip-permissions; the prompt arrives on stdin and every turn is
// streamed as JSON lines so the contract can be found in them.

export const CLAUDE_BIN = "claude";
export const CLAUDE_DEFAULT_MODEL = "sonnet";
const AUTH_ENV = ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"];

export const claudeArgv = (model: string): string[] => [
  CLAUDE_BIN,
  "-p",
  "--model",
  model,
  "--output-format",
  "stream-json",
  "--verbose",
  "--permission-mode",
  "acceptEdits",
  "--no-session-persistence",
];

/** `claude auth status` prints JSON with `loggedIn` and exits 0 when logged in. */
async function claudeLoggedIn(bin: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<boolean> {
  const r = await runQuick([bin, "auth", "status"], env, timeoutMs);
  if (!r.ok) return false;
  const o = parseJsonObject(r.stdout.trim());
  return o === null || o.loggedIn !== false;
}

export function createClaudeCode(cfg: ProviderConfig | undefined): Provider {
  const name = "claude-code";
  return {
    name,
    kind: "builtin",
    max_parallel: maxParallel(cfg),
    default_model: cfg?.model ?? CLAUDE_DEFAULT_MODEL,
    plan(ctx: LaunchContext): Promise<LaunchPlan> {
      const model = pickModel(ctx, cfg, CLAUDE_DEFAULT_MODEL);
      const argv = claudeArgv(model);
      return Promise.resolve({ argv, stdin: "prompt", env: { ...cfg?.env }, unset_env: [], argv_for_meta: argv, model });
    },
    async preflight(o: PreflightOptions): Promise<ProviderAvailability> {
      const bin = await checkBinary(name, CLAUDE_BIN, o.env, o.timeout_ms);
      if (!bin.ok) return bin.result;
      const env = { ...o.env, ...cfg?.env };
      if (AUTH_ENV.some((k) => hasEnv(env, k))) return available(name);
      if (await claudeLoggedIn(bin.path, env, o.timeout_ms)) return available(name);
      return unavailable(name, `${name}_auth_missing`, `no ${AUTH_ENV.join("/")} and \`claude auth status\` does not report loggedIn`);
    },
  };
}
