import { readFileSync } from "node:fs";
import path from "node:path";
import type { ProviderConfig } from "../../config/types.js";
import { isObject, parseJsonObject, readTextQuiet, type JsonObject } from "../fs-util.js";
import type { ProviderAvailability } from "../port.js";
import { available, checkBinary, hasEnv, homeDir, maxParallel, pickModel, unavailable } from "./common.js";
import type { LaunchContext, LaunchPlan, PreflightOptions, Provider } from "./types.js";
import { BUILTIN_CREDENTIALS } from "./credentials.js";

// OpenCode headless (REFERENCE §3, §6). Measured with OpenCode 1.18.33 against a mock Chat
// Completions API configured as a custom provider (test/real-agents):
//
//   opencode run                   headless: one message, then exit
//     -m provider/model            always: without it OpenCode falls back to a free model that can
//                                  retry forever (and the runner enforces max_runtime besides)
//     --format json                every event as a JSON line: the contract, error events and
//                                  step_finish tokens/cost are read from it
//     --dir W                      the worktree is the session's directory
//     "<prompt text>"              the message is argv text (no stdin); a prompt over 100 KiB is
//                                  replaced by a pointer to the prompt file
//   env OPENCODE_CONFIG_CONTENT    permissions: every tool allowed inside the worktree (edits, bash
//                                  including git commit), anything outside it denied; a user's own
//                                  OPENCODE_CONFIG_CONTENT is left alone

export const OPENCODE_BIN = "opencode";
export const OPENCODE_DEFAULT_MODEL = "zai-coding-plan/glm-4.6";
/** One argv string may not exceed 128 KiB on Linux; a longer prompt is pointed to instead. */
const MAX_PROMPT_ARG_BYTES = 100 * 1024;
const PERMISSIONS = JSON.stringify({ permission: { "*": "allow", external_directory: "deny" } });
// The provider keys opencode can use are its credentials (one list, credentials.ts).
const PROVIDER_KEYS = BUILTIN_CREDENTIALS["opencode"] ?? [];

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
      const model = cfg?.model ?? OPENCODE_DEFAULT_MODEL;
      const why = opencodeAuthProblem(env, model);
      return why === null ? available(name) : unavailable(name, `${name}_auth_missing`, why);
    },
  };
}

/** Env keys OpenCode's built-in providers read (models.dev), for the providers users pick most. */
const KNOWN_PROVIDER_ENV: Record<string, string[]> = {
  anthropic: ["ANTHROPIC_API_KEY"],
  openai: ["OPENAI_API_KEY"],
  openrouter: ["OPENROUTER_API_KEY"],
  google: ["GOOGLE_GENERATIVE_AI_API_KEY", "GEMINI_API_KEY"],
  "zai-coding-plan": ["ZHIPU_API_KEY", "ZAI_API_KEY"],
  zai: ["ZHIPU_API_KEY", "ZAI_API_KEY"],
  zhipuai: ["ZHIPU_API_KEY"],
  groq: ["GROQ_API_KEY"],
  deepseek: ["DEEPSEEK_API_KEY"],
  xai: ["XAI_API_KEY"],
  mistral: ["MISTRAL_API_KEY"],
  opencode: ["OPENCODE_API_KEY"],
};

/** The global config files OpenCode reads, in its order: XDG config dir, then OPENCODE_CONFIG. */
export function opencodeConfigFiles(env: NodeJS.ProcessEnv): string[] {
  const dir = path.join((env.XDG_CONFIG_HOME ?? "").trim() || path.join(homeDir(env), ".config"), "opencode");
  const files = ["config.json", "opencode.json", "opencode.jsonc"].map((f) => path.join(dir, f));
  const explicit = (env.OPENCODE_CONFIG ?? "").trim();
  return explicit !== "" ? [...files, explicit] : files;
}

/** JSON with comments (opencode.jsonc): line and block comments outside strings are dropped. */
function parseJsonc(text: string | null): JsonObject | null {
  if (text === null) return null;
  const direct = parseJsonObject(text);
  if (direct !== null) return direct;
  return parseJsonObject(text.replace(/("(?:[^"\\]|\\.)*")|\/\/[^\n]*|\/\*[\s\S]*?\*\//g, (_m, str: string | undefined) => str ?? ""));
}

/** A config value that may be `{env:NAME}` or `{file:path}`: is it really there? */
function secretPresent(v: unknown, env: NodeJS.ProcessEnv): boolean {
  if (typeof v !== "string" || v.trim() === "") return false;
  const ref = /^\{(env|file):([^}]+)\}$/.exec(v.trim());
  if (ref === null) return true;
  if (ref[1] === "env") return hasEnv(env, ref[2] ?? "");
  const file = (ref[2] ?? "").replace(/^~(?=\/)/, homeDir(env));
  return (readTextQuiet(file) ?? "").trim() !== "";
}

/**
 * Null when OpenCode has a credential for the model's provider, else what to do about it. The
 * places OpenCode itself looks (REFERENCE §6): `auth.json` (written by `opencode auth login`), the
 * provider's `options.apiKey` in opencode.json (literal, {env:…} or {file:…}), the provider's env
 * keys, and OPENCODE_CONFIG_CONTENT. A custom provider with a baseURL and no key at all is taken
 * as keyless (a local server).
 */
export function opencodeAuthProblem(env: NodeJS.ProcessEnv, model: string): string | null {
  const providerId = model.includes("/") ? (model.split("/")[0] ?? "") : model;
  const auth = parseJsonObject(readTextQuiet(opencodeAuthFile(env)));
  if (auth !== null && isObject(auth[providerId])) return null;
  const configs = [...opencodeConfigFiles(env).map((f) => parseJsonc(readTextQuiet(f))), parseJsonc((env.OPENCODE_CONFIG_CONTENT ?? "").trim() || null)];
  let custom = false;
  const envKeys = [...(KNOWN_PROVIDER_ENV[providerId] ?? [])];
  for (const c of configs) {
    const p = c !== null && isObject(c.provider) ? c.provider[providerId] : undefined;
    if (!isObject(p)) continue;
    custom = true;
    const opts = isObject(p.options) ? p.options : {};
    if (secretPresent(opts.apiKey, env)) return null;
    if (Array.isArray(p.env)) for (const k of p.env) if (typeof k === "string") envKeys.push(k);
    if (typeof opts.baseURL === "string" && opts.apiKey === undefined && envKeys.length === 0) return null;
  }
  if (envKeys.some((k) => hasEnv(env, k))) return null;
  // A provider dx-batch knows nothing about may read any of the usual keys.
  if (!custom && KNOWN_PROVIDER_ENV[providerId] === undefined && PROVIDER_KEYS.some((k) => hasEnv(env, k))) return null;
  const where = [
    `\`opencode auth login\` (${opencodeAuthFile(env)})`,
    `"provider.${providerId}.options.apiKey" in ${opencodeConfigFiles(env)[1] ?? "opencode.json"}`,
  ];
  if (envKeys.length > 0) where.push(envKeys.join(" or "));
  return `no credential for OpenCode provider "${providerId}" (model ${model}): add one with ${where.join(", or ")}`;
}
