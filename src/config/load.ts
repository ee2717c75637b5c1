import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { delimiter, dirname, isAbsolute, join, resolve } from "node:path";
import type { ValidateFunction } from "ajv";
import { BLOCKED_ENTRY } from "../core/policy.js";
import { DxError } from "../errors.js";
import { describeAjvError } from "../schema/ajv-errors.js";
import { CONFIG_DEFAULTS, CONFIG_ENV, defaultRoots, defaultTracker } from "./defaults.js";
import type { ConfigFile } from "./schema.js";
import { validateConfigFile } from "./validator.generated.js";
import type { ProviderConfig, ResolvedConfig, RunnerConfig, TrackerConfig } from "./types.js";

// SPEC §3 in one pass, reading but never writing: find the file, parse and validate each layer
// (flags, file, env) where it enters, resolve its relative paths against its own base, then merge
// key by key: flags over file over env over built-in defaults.

export const CONFIG_FILE_NAME = "dx-batch.config.json";
export const CONFIG_SCHEMA_PATH = "schemas/config.schema.json";

export const ConfigErrorCode = {
  not_found: "config_not_found",
  unreadable: "config_unreadable",
  not_json: "config_not_json",
  unknown_key: "config_unknown_key",
  invalid: "config_invalid",
} as const;

/** Command-line overrides with snake_case keys (`max_parallel`, `repo`, …) plus `config` (the --config FILE). */
export type ConfigFlags = Readonly<Record<string, unknown>>;

export interface LoadConfigInput {
  flags: ConfigFlags;
  cwd: string;
  env: Readonly<Record<string, string | undefined>>;
}

export interface LoadedConfig {
  config: ResolvedConfig;
  /** Absolute path of the config file used, or null when none was found. */
  source: string | null;
}

type Layer = Omit<ConfigFile, "$schema">;

export function loadConfig(input: LoadConfigInput): LoadedConfig {
  const { cwd, env } = input;
  const { config: configFlag, ...flagValues } = input.flags;

  const flagLayer = resolvePaths(validateLayer(dropUndefined(flagValues), "command line", true), cwd);

  const source = discover(configFlag, cwd, env);
  const fileLayer = source === null ? {} : resolvePaths(readConfigFile(source), dirname(source));

  const envLayer = readEnv(env, cwd);

  const merged: Layer = { ...envLayer, ...fileLayer, ...flagLayer };
  const config: ResolvedConfig = {
    ...structuredClone(CONFIG_DEFAULTS),
    ...defaultRoots(env),
    tracker: merged.tracker ?? defaultTracker(executableOnPath("bd", env.PATH)),
    ...merged,
  };
  return { config, source };
}

function discover(configFlag: unknown, cwd: string, env: LoadConfigInput["env"]): string | null {
  if (configFlag !== undefined) {
    if (typeof configFlag !== "string" || configFlag === "") {
      throw new DxError(ConfigErrorCode.invalid, "command line: --config: must be a file path", { remedy: "pass --config FILE" });
    }
    return requireFile(resolve(cwd, configFlag), "--config", "pass an existing file to --config, or drop it to use ./dx-batch.config.json");
  }
  const fromEnv = env.DX_BATCH_CONFIG;
  if (fromEnv !== undefined && fromEnv !== "") {
    return requireFile(resolve(cwd, fromEnv), "$DX_BATCH_CONFIG", "point DX_BATCH_CONFIG at an existing file, or unset it");
  }
  const local = join(cwd, CONFIG_FILE_NAME);
  return isFile(local) ? local : null;
}

function requireFile(path: string, via: string, remedy: string): string {
  if (!exists(path)) throw new DxError(ConfigErrorCode.not_found, `${path}: config file not found (from ${via})`, { remedy });
  return path;
}

function readConfigFile(file: string): Layer {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = errnoCode(e);
    throw new DxError(ConfigErrorCode.unreadable, `${file}: cannot read the config file (${code ?? String(e)})`, { cause: e });
  }
  // Positions in JSON.parse errors count from after a byte-order mark, so strip it first.
  const body = text.replace(/^\uFEFF/, "");
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const where = jsonErrorPosition(message, body);
    throw new DxError(ConfigErrorCode.not_json, `${file}: not JSON: ${message}${where === null ? "" : ` (line ${where.line}, column ${where.column})`}`, {
      remedy: where === null ? null : `fix the JSON syntax at line ${where.line}, column ${where.column}`,
      cause: e,
    });
  }
  return validateLayer(data, file, false);
}

// src/config/schema.ts precompiled (scripts/gen-schemas.mjs): every command loads a config, and
// compiling its schema at run time cost more than the rest of `dx-batch check` together.
const validator = validateConfigFile as ValidateFunction<ConfigFile>;

function validateLayer(data: unknown, label: string, isFlags: boolean): Layer {
  if (!validator(data)) {
    const d = describeAjvError(validator.errors);
    const at = isFlags ? `${d.path}${flagName(d.path)}` : d.path;
    if (d.unknownKey) {
      const allowed = d.parentKeys?.filter((k) => k !== "$schema");
      throw new DxError(ConfigErrorCode.unknown_key, `${label}: ${at}: unknown key`, {
        remedy:
          allowed === undefined ? `remove the key; the keys are listed in ${CONFIG_SCHEMA_PATH}` : `remove or rename it; allowed here: ${allowed.join(", ")}`,
      });
    }
    throw new DxError(ConfigErrorCode.invalid, `${label}: ${at}: ${d.problem}`, {
      remedy: d.description === null ? `see ${CONFIG_SCHEMA_PATH}` : `${d.path}: ${d.description} (see ${CONFIG_SCHEMA_PATH})`,
    });
  }
  const { $schema: _ignored, ...layer } = data;
  checkSemantics(layer, label);
  return layer;
}

// What the schema cannot say without becoming unreadable: the reserved `blocked` entry.
function checkSemantics(layer: Layer, label: string): void {
  const refuse = (path: string, problem: string, remedy: string): never => {
    throw new DxError(ConfigErrorCode.invalid, `${label}: ${path}: ${problem}`, { remedy });
  };
  if (layer.providers !== undefined && Object.hasOwn(layer.providers, BLOCKED_ENTRY)) {
    refuse(`/providers/${BLOCKED_ENTRY}`, `"${BLOCKED_ENTRY}" is reserved for retry_chain and cannot name a provider`, "rename the provider");
  }
  if (layer.review_provider === BLOCKED_ENTRY) {
    refuse("/review_provider", `"${BLOCKED_ENTRY}" is not a provider`, "name a provider, or null for the first available of retry_chain");
  }
  const chain = layer.retry_chain;
  if (chain !== undefined) {
    const end = chain.indexOf(BLOCKED_ENTRY);
    if (end === 0) refuse("/retry_chain", `needs at least one provider before "${BLOCKED_ENTRY}"`, 'e.g. ["opencode","cc-glm","blocked"]');
    if (end !== -1 && end < chain.length - 1) {
      refuse(`/retry_chain/${end + 1}`, `unreachable: entries after "${BLOCKED_ENTRY}" are never used`, `end the chain with "${BLOCKED_ENTRY}" or drop it`);
    }
  }
}

function readEnv(env: LoadConfigInput["env"], cwd: string): Layer {
  const layer: Layer = {};
  const path = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v === "" ? undefined : resolve(cwd, v);
  };
  const artifactDir = path(CONFIG_ENV.artifact_dir);
  if (artifactDir !== undefined) layer.artifact_dir = artifactDir;
  const runnerLogDir = path(CONFIG_ENV.runner_log_dir);
  if (runnerLogDir !== undefined) layer.runner_log_dir = runnerLogDir;
  const workspaceRoot = path(CONFIG_ENV.workspace_root);
  if (workspaceRoot !== undefined) layer.workspace_root = workspaceRoot;
  const cap = env[CONFIG_ENV.exec_process_cap];
  if (cap !== undefined && cap !== "") {
    const n = /^[0-9]+$/.test(cap.trim()) ? Number(cap.trim()) : NaN;
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new DxError(ConfigErrorCode.invalid, `environment: ${CONFIG_ENV.exec_process_cap}=${JSON.stringify(cap)}: must be an integer >= 1`, {
        remedy: `set ${CONFIG_ENV.exec_process_cap} to a whole number such as 60, or unset it`,
      });
    }
    layer.exec_process_cap = n;
  }
  return layer;
}

/** Relative paths of a layer resolved against its base (the config file's directory, or cwd for flags). */
function resolvePaths(layer: Layer, base: string): Layer {
  const out: Layer = { ...layer };
  const abs = (p: string): string => resolve(base, p);
  if (out.artifact_dir !== undefined) out.artifact_dir = abs(out.artifact_dir);
  if (out.runner_log_dir !== undefined) out.runner_log_dir = abs(out.runner_log_dir);
  if (out.workspace_root !== undefined) out.workspace_root = abs(out.workspace_root);
  if (out.allowed_prefixes !== undefined) out.allowed_prefixes = out.allowed_prefixes.map(abs);
  if (out.protected_paths !== undefined) out.protected_paths = out.protected_paths.map(abs);
  if (out.repo !== undefined && out.repo !== null) out.repo = abs(out.repo);
  if (out.prompts !== undefined) {
    const prompts: ResolvedConfig["prompts"] = {};
    if (out.prompts.implement !== undefined) prompts.implement = abs(out.prompts.implement);
    if (out.prompts.review !== undefined) prompts.review = abs(out.prompts.review);
    out.prompts = prompts;
  }
  if (out.runner !== undefined) out.runner = resolveRunner(out.runner, base);
  if (out.tracker !== undefined) out.tracker = resolveTracker(out.tracker, base);
  if (out.providers !== undefined) {
    const providers: Record<string, ProviderConfig> = {};
    for (const [name, p] of Object.entries(out.providers)) providers[name] = resolveProvider(p, base);
    out.providers = providers;
  }
  return out;
}

/**
 * A command with a slash is a path (`bin/bd`, `./agent.sh`) and is made absolute, so it means the
 * same whatever directory the agent runs in; a bare name is looked up on PATH at run time; an argv
 * element starting with a `{placeholder}` is left for the runner to fill.
 */
function resolveCommand(cmd: string, base: string): string {
  return cmd.includes("/") && !isAbsolute(cmd) && !cmd.startsWith("{") ? resolve(base, cmd) : cmd;
}

function resolveArgv(argv: string[], base: string): string[] {
  const [first, ...rest] = argv;
  return first === undefined ? argv : [resolveCommand(first, base), ...rest];
}

function resolveRunner(r: RunnerConfig, base: string): RunnerConfig {
  return r.type === "dx-runner" ? { ...r, command: resolveCommand(r.command, base) } : r;
}

function resolveTracker(t: TrackerConfig, base: string): TrackerConfig {
  if (t.type === "file") return { ...t, path: resolve(base, t.path) };
  if (t.type === "beads" && t.command !== undefined) return { ...t, command: resolveCommand(t.command, base) };
  return t;
}

function resolveProvider(p: ProviderConfig, base: string): ProviderConfig {
  const out: ProviderConfig = { ...p };
  if (out.command !== undefined) out.command = resolveArgv(out.command, base);
  if (out.preflight !== undefined) out.preflight = resolveArgv(out.preflight, base);
  return out;
}

function executableOnPath(name: string, pathVar: string | undefined): boolean {
  if (pathVar === undefined) return false;
  for (const dir of pathVar.split(delimiter)) {
    // An empty PATH entry means the current directory; a tracker default should not depend on it.
    if (dir === "" || !isAbsolute(dir)) continue;
    const candidate = join(dir, name);
    try {
      if (statSync(candidate).isFile()) {
        accessSync(candidate, constants.X_OK);
        return true;
      }
    } catch {
      // not here, or not executable: keep looking
    }
  }
  return false;
}

function jsonErrorPosition(message: string, text: string): { line: number; column: number } | null {
  const m = /at position (\d+)/.exec(message);
  let pos: number;
  if (m?.[1] !== undefined) pos = Number(m[1]);
  else if (/end of JSON input/i.test(message)) pos = text.length;
  else return null;
  const before = text.slice(0, pos);
  const lines = before.split("\n");
  return { line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1 };
}

function flagName(path: string): string {
  const key = /^\/([a-z_]+)$/.exec(path)?.[1];
  return key === undefined ? "" : ` (--${key.replace(/_/g, "-")})`;
}

function dropUndefined(o: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch (e) {
    const code = errnoCode(e);
    return !(code === "ENOENT" || code === "ENOTDIR");
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function errnoCode(e: unknown): string | null {
  return typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : null;
}
