import path from "node:path";
import type { ProviderConfig } from "../../config/types.js";
import { parseJsonObject } from "../fs-util.js";
import type { ProviderAvailability } from "../port.js";
import { available, checkBinary, hasEnv, maxParallel, pickModel, runQuick, unavailable } from "./common.js";
import type { LaunchContext, LaunchPlan, PreflightOptions, Provider } from "./types.js";

// Claude Code headless (REFERENCE §3, §6). Measured with Claude Code 2.1.197 against a mock
// Anthropic API (test/real-agents):
//
//   claude -p                      headless: one prompt (on stdin), then exit
//     --model M
//     --output-format stream-json  every event as a JSON line: the contract, api_retry (429) events
//     --verbose                    and usage/cost are read from it; stream-json requires --verbose
//     --permission-mode acceptEdits  file edits inside the working directory without a prompt; the
//                                  alternative --dangerously-skip-permissions is refused as root
//     --allowedTools <list>        acceptEdits alone denies `git add`/`git commit` ("This command
//                                  requires approval"), so the work could not be committed: allow
//                                  exactly the git commands the prompts ask for, plus the edit tools
//     --add-dir <dir>              only when the contract file lies outside the worktree: Write is
//                                  denied outside the working directory otherwise
//     --no-session-persistence     unattended runs leave no resumable sessions behind

export const CLAUDE_BIN = "claude";
export const CLAUDE_DEFAULT_MODEL = "sonnet";
const AUTH_ENV = ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"];

/** The git commands the implement and review prompts need, and the file tools. */
export const CLAUDE_ALLOWED_TOOLS = [
  "Bash(git add:*)",
  "Bash(git commit:*)",
  "Bash(git status:*)",
  "Bash(git diff:*)",
  "Bash(git log:*)",
  "Bash(git show:*)",
  "Bash(git rev-parse:*)",
  "Read",
  "Write",
  "Edit",
  "MultiEdit",
  "Glob",
  "Grep",
];

const isInside = (file: string, dir: string): boolean => {
  const rel = path.relative(dir, file);
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
};

export const claudeArgv = (model: string, ctx?: { worktree: string; contract_file: string }): string[] => [
  CLAUDE_BIN,
  "-p",
  "--model",
  model,
  "--output-format",
  "stream-json",
  "--verbose",
  "--permission-mode",
  "acceptEdits",
  "--allowedTools",
  CLAUDE_ALLOWED_TOOLS.join(","),
  ...(ctx !== undefined && ctx.contract_file !== "" && !isInside(ctx.contract_file, ctx.worktree) ? ["--add-dir", path.dirname(ctx.contract_file)] : []),
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
      const argv = claudeArgv(model, ctx);
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
