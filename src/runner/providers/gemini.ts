import { existsSync } from "node:fs";
import path from "node:path";
import type { ProviderConfig } from "../../config/types.js";
import type { ProviderAvailability } from "../port.js";
import { available, checkBinary, envTruthy, hasEnv, homeDir, maxParallel, pickModel, unavailable } from "./common.js";
import type { LaunchContext, LaunchPlan, PreflightOptions, Provider } from "./types.js";

// Gemini CLI headless (REFERENCE §3): `-p ""` plus the prompt on stdin, yolo approvals, and
// --skip-trust because a fresh worktree is an untrusted folder (exit 55 otherwise).

export const GEMINI_BIN = "gemini";
export const GEMINI_DEFAULT_MODEL = "gemini-2.5-pro";

export const geminiArgv = (model: string): string[] => [
  GEMINI_BIN,
  "-p",
  "",
  "-m",
  model,
  "-o",
  "stream-json",
  "--approval-mode",
  "yolo",
  "--skip-trust",
];

export const geminiSettingsFile = (env: NodeJS.ProcessEnv): string => path.join(homeDir(env), ".gemini", "settings.json");

export function createGemini(cfg: ProviderConfig | undefined): Provider {
  const name = "gemini";
  return {
    name,
    kind: "builtin",
    max_parallel: maxParallel(cfg),
    default_model: cfg?.model ?? GEMINI_DEFAULT_MODEL,
    plan(ctx: LaunchContext): Promise<LaunchPlan> {
      const model = pickModel(ctx, cfg, GEMINI_DEFAULT_MODEL);
      const argv = geminiArgv(model);
      return Promise.resolve({ argv, stdin: "prompt", env: { ...cfg?.env }, unset_env: [], argv_for_meta: argv, model });
    },
    async preflight(o: PreflightOptions): Promise<ProviderAvailability> {
      const bin = await checkBinary(name, GEMINI_BIN, o.env, o.timeout_ms);
      if (!bin.ok) return bin.result;
      const env = { ...o.env, ...cfg?.env };
      if (hasEnv(env, "GEMINI_API_KEY") || envTruthy(env, "GOOGLE_GENAI_USE_VERTEXAI") || envTruthy(env, "GOOGLE_GENAI_USE_GCA")) return available(name);
      if (existsSync(geminiSettingsFile(env))) return available(name);
      return unavailable(name, `${name}_auth_missing`, `no GEMINI_API_KEY, GOOGLE_GENAI_USE_VERTEXAI, GOOGLE_GENAI_USE_GCA or ${geminiSettingsFile(env)}`);
    },
  };
}
