import { existsSync } from "node:fs";
import { isObject, parseJsonObject, readTextQuiet } from "../fs-util.js";
import path from "node:path";
import type { ProviderConfig } from "../../config/types.js";
import type { RunnerReason } from "../../core/reasons.js";
import type { ProviderAvailability } from "../port.js";
import { available, checkBinary, envTruthy, hasEnv, homeDir, maxParallel, pickModel, unavailable } from "./common.js";
import type { LaunchContext, LaunchPlan, PreflightOptions, Provider } from "./types.js";

// Gemini CLI headless (REFERENCE §3, §6). Measured with Gemini CLI 0.61.0 against a mock Gemini
// API (test/real-agents):
//
//   gemini -p ""                   headless; the prompt arrives on stdin and is appended to ""
//     -m M
//     -o stream-json               every event as a JSON line: the contract, retries, result stats
//     --approval-mode yolo         tools (write_file, run_shell_command) run without a prompt
//     --skip-trust                 a fresh worktree is an untrusted folder (exit 55 otherwise)
//
// Headless auth, measured: GEMINI_API_KEY alone works; with GOOGLE_GEMINI_BASE_URL set (a proxy or
// gateway) the CLI also needs `security.auth.selectedType` in ~/.gemini/settings.json and exits 41
// "Invalid auth method selected" without it; "oauth-personal" without cached credentials exits 41
// ("Manual authorization is required"). Preflight refuses those setups with the fix in its detail.

export const GEMINI_BIN = "gemini";
export const GEMINI_DEFAULT_MODEL = "gemini-2.5-pro";

export const geminiArgv = (model: string): string[] => [GEMINI_BIN, "-p", "", "-m", model, "-o", "stream-json", "--approval-mode", "yolo", "--skip-trust"];

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
      const verdict = geminiAuthVerdict({ ...o.env, ...cfg?.env });
      return verdict === null ? available(name) : unavailable(name, verdict.reason_code, verdict.detail);
    },
  };
}

/** `security.auth.selectedType` (or the older top-level `selectedAuthType`) of the user's settings. */
export function geminiSelectedAuthType(env: NodeJS.ProcessEnv): string | null {
  const s = parseJsonObject(readTextQuiet(geminiSettingsFile(env)));
  if (s === null) return null;
  const sec = s.security;
  const fromSecurity = isObject(sec) && isObject(sec.auth) && typeof sec.auth.selectedType === "string" ? sec.auth.selectedType : null;
  const legacy = typeof s.selectedAuthType === "string" ? s.selectedAuthType : null;
  return (fromSecurity ?? legacy)?.trim() || null;
}

/** Why headless Gemini would exit 41 with this environment and settings, or null when it can run. */
export function geminiAuthVerdict(env: NodeJS.ProcessEnv): { reason_code: RunnerReason; detail: string } | null {
  const settings = geminiSettingsFile(env);
  const type = geminiSelectedAuthType(env);
  const key = hasEnv(env, "GEMINI_API_KEY");
  const envAuth = key || envTruthy(env, "GOOGLE_GENAI_USE_VERTEXAI") || envTruthy(env, "GOOGLE_GENAI_USE_GCA");
  const fixType = `set {"security":{"auth":{"selectedType":"gemini-api-key"}}} in ${settings}`;
  if (type === null) {
    if (hasEnv(env, "GOOGLE_GEMINI_BASE_URL")) {
      return {
        reason_code: "gemini_auth_type_unset",
        detail: `GOOGLE_GEMINI_BASE_URL is set but no auth type is selected, so headless gemini exits 41 ("Invalid auth method selected"): ${fixType}`,
      };
    }
    if (envAuth) return null;
    return {
      reason_code: "gemini_auth_missing",
      detail: `no GEMINI_API_KEY, GOOGLE_GENAI_USE_VERTEXAI or GOOGLE_GENAI_USE_GCA, and no auth type in ${settings}: set GEMINI_API_KEY`,
    };
  }
  switch (type) {
    case "gemini-api-key":
      return key ? null : { reason_code: "gemini_auth_missing", detail: `${settings} selects gemini-api-key but GEMINI_API_KEY is not set` };
    case "oauth-personal": {
      const creds = path.join(homeDir(env), ".gemini", "oauth_creds.json");
      return existsSync(creds)
        ? null
        : {
            reason_code: "gemini_auth_missing",
            detail: `${settings} selects oauth-personal but ${creds} does not exist (headless gemini cannot log in): run gemini once interactively, or set GEMINI_API_KEY and ${fixType}`,
          };
    }
    case "vertex-ai":
      return hasEnv(env, "GOOGLE_API_KEY") || hasEnv(env, "GOOGLE_CLOUD_PROJECT")
        ? null
        : { reason_code: "gemini_auth_missing", detail: `${settings} selects vertex-ai but neither GOOGLE_API_KEY nor GOOGLE_CLOUD_PROJECT is set` };
    default:
      return null;
  }
}
