import { readFileSync } from "node:fs";
import path from "node:path";
import type { ProviderConfig } from "../../config/types.js";
import { parseJsonObject, readTextQuiet } from "../fs-util.js";
import type { ProviderAvailability } from "../port.js";
import { available, checkBinary, hasEnv, homeDir, maxParallel, pickModel, unavailable } from "./common.js";
import type { LaunchContext, LaunchPlan, PreflightOptions, Provider } from "./types.js";

// OpenCode headless (REFERENCE §3): `opencode run` takes the prompt as argv text. Without -m it
// falls back to a free model that can retry forever, so a model is always passed (and the runner
// enforces max_runtime). Permissions are granted inside the worktree and denied outside it.

export const OPENCODE_BIN = "opencode";
export const OPENCODE_DEFAULT_MODEL = "zai-coding-plan/glm-4.6";
/** One argv string may not exceed 128 KiB on Linux; a longer prompt is pointed to instead. */
const MAX_PROMPT_ARG_BYTES = 100 * 1024;
const PERMISSIONS = JSON.stringify({ permission: { "*": "allow", external_directory: "deny" } });
const PROVIDER_KEYS = [
  "ANTHROPIC_API_KEY",
  "OPENAI_API_KEY",
  "OPENROUTER_API_KEY",
  "GEMINI_API_KEY",
  "GOOGLE_GENERATIVE_AI_API_KEY",
  "ZAI_API_KEY",
  "ZHIPU_API_KEY",
  "GROQ_API_KEY",
  "DEEPSEEK_API_KEY",
  "XAI_API_KEY",
  "MISTRAL_API_KEY",
  "OPENCODE_API_KEY",
];

export const opencodeArgv = (model: string, worktree: string, message: string): string[] => [
  OPENCODE_BIN,
  "run",
  "-m",
  model,
  "--format",
  "json",
  "--dir",
  worktree,
  message,
];

export function opencodeAuthFile(env: NodeJS.ProcessEnv): string {
  const data = (env.XDG_DATA_HOME ?? "").trim() || path.join(homeDir(env), ".local", "share");
  return path.join(data, "opencode", "auth.json");
}

export function createOpencode(cfg: ProviderConfig | undefined): Provider {
  const name = "opencode";
  return {
    name,
    kind: "builtin",
    max_parallel: maxParallel(cfg),
    default_model: cfg?.model ?? OPENCODE_DEFAULT_MODEL,
    plan(ctx: LaunchContext): Promise<LaunchPlan> {
      const model = pickModel(ctx, cfg, OPENCODE_DEFAULT_MODEL);
      const text = readFileSync(ctx.prompt_file, "utf8");
      const message =
        Buffer.byteLength(text) <= MAX_PROMPT_ARG_BYTES
          ? text
          : `Your full task is in the file ${ctx.prompt_file}. Read it completely, then do exactly what it says.`;
      const argv = opencodeArgv(model, ctx.worktree, message);
      const env: Record<string, string> = { ...cfg?.env };
      if (!hasEnv(ctx.env, "OPENCODE_CONFIG_CONTENT") && env.OPENCODE_CONFIG_CONTENT === undefined) env.OPENCODE_CONFIG_CONTENT = PERMISSIONS;
      return Promise.resolve({
        argv,
        stdin: "none",
        env,
        unset_env: [],
        argv_for_meta: [...argv.slice(0, -1), `<prompt text from ${ctx.prompt_file}>`],
        model,
      });
    },
    async preflight(o: PreflightOptions): Promise<ProviderAvailability> {
      const bin = await checkBinary(name, OPENCODE_BIN, o.env, o.timeout_ms);
      if (!bin.ok) return bin.result;
      const env = { ...o.env, ...cfg?.env };
      if (PROVIDER_KEYS.some((k) => hasEnv(env, k))) return available(name);
      const auth = parseJsonObject(readTextQuiet(opencodeAuthFile(env)));
      if (auth !== null && Object.keys(auth).length > 0) return available(name);
      return unavailable(name, `${name}_auth_missing`, `no credentials in ${opencodeAuthFile(env)} and no provider API key in the environment`);
    },
  };
}
