import path from "node:path";
import type { ProviderConfig } from "../../config/types.js";
import type { ProviderAvailability } from "../port.js";
import { readTextQuiet } from "../fs-util.js";
import { available, checkBinary, hasEnv, homeDir, maxParallel, pickModel, runQuick, unavailable } from "./common.js";
import type { LaunchContext, LaunchPlan, PreflightOptions, Provider } from "./types.js";

// Codex headless (REFERENCE §3, §6). Measured with Codex 0.171.0 against a mock Responses API
// (test/real-agents):
//
//   codex exec                     headless: one prompt, then exit
//     --json                       every event as a JSON line: the contract, reconnects/429s and
//                                  turn.completed usage are read from it; thread.started names the
//                                  session file whose token_count events give usage mid-run
//                                  (codex-rollout.ts)
//     -m M                         without it Codex uses its config's model; with a name it has no
//                                  metadata for ("gpt-5-codex" in 0.171) it warns and degrades
//     -C W                         the worktree is the agent's working root
//     -s workspace-write           writes confined to the worktree (and /tmp) by Codex's own sandbox.
//                                  That sandbox keeps the worktree's git directory read-only
//                                  ("index.lock: Read-only file system"), and in 0.171 neither
//                                  --add-dir <git dir>, sandbox_workspace_write.writable_roots nor a
//                                  permission profile granting it write lifts that (measured), so
//                                  Codex cannot commit: dx-batch commits a completed attempt's
//                                  changes itself. -s danger-full-access would let it commit, at the
//                                  price of no sandbox at all; a user who wants that overrides
//                                  `providers.codex.command`.
//     --add-dir <dir>              only when the contract file lies outside the worktree
//     -                            the prompt is read from stdin (no argv size limit)

export const CODEX_BIN = "codex";
export const CODEX_DEFAULT_MODEL = "gpt-5.5";

const isInside = (file: string, dir: string): boolean => {
  const rel = path.relative(dir, file);
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
};

export const codexArgv = (model: string, worktree: string, contractFile = ""): string[] => [
  CODEX_BIN,
  "exec",
  "--json",
  "-m",
  model,
  "-C",
  worktree,
  "-s",
  "workspace-write",
  ...(contractFile !== "" && !isInside(contractFile, worktree) ? ["--add-dir", path.dirname(contractFile)] : []),
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
      const argv = codexArgv(model, ctx.worktree, ctx.contract_file);
      return Promise.resolve({ argv, stdin: "prompt", env: { ...cfg?.env }, unset_env: [], argv_for_meta: argv, model });
    },
    async preflight(o: PreflightOptions): Promise<ProviderAvailability> {
      const bin = await checkBinary(name, CODEX_BIN, o.env, o.timeout_ms);
      if (!bin.ok) return bin.result;
      const env = { ...o.env, ...cfg?.env };
      const file = codexConfigFile(env);
      const conf = readCodexConfig(file);
      const custom = conf.model_provider !== null && conf.model_provider !== "openai" ? conf.model_provider : null;
      if (custom !== null) {
        // A provider of the user's own: its env_key is the credential `codex exec` sends; `codex
        // login` plays no part (measured with 0.171: such a setup runs with login status failing).
        const p = conf.providers.get(custom);
        if (p === undefined)
          return unavailable(name, `${name}_config_invalid`, `${file} selects model_provider "${custom}" but has no [model_providers.${custom}] table`);
        const key = p.get("env_key") ?? null;
        if (key === null || hasEnv(env, key)) return available(name);
        return unavailable(name, `${name}_auth_missing`, `${file} selects model_provider "${custom}", whose env_key ${key} is not set: export ${key}`);
      }
      if (hasEnv(env, "CODEX_API_KEY")) return available(name);
      if ((await runQuick([bin.path, "login", "status"], env, o.timeout_ms)).ok) return available(name);
      return unavailable(
        name,
        `${name}_auth_missing`,
        "no CODEX_API_KEY, `codex login status` fails, and no custom model_provider in " + file + ": run `codex login --with-api-key` or set CODEX_API_KEY",
      );
    },
  };
}

export const codexConfigFile = (env: NodeJS.ProcessEnv): string => path.join((env.CODEX_HOME ?? "").trim() || path.join(homeDir(env), ".codex"), "config.toml");

export interface CodexConfigFacts {
  model_provider: string | null;
  /** `[model_providers.<name>]` tables: their string and boolean keys. */
  providers: Map<string, Map<string, string>>;
}

/**
 * The few facts preflight needs from Codex's config.toml: the top-level `model_provider` and the
 * `[model_providers.<name>]` tables. A line reader, not a TOML parser: inline tables and
 * multi-line values are not understood, which only makes preflight fall back to `codex login`.
 */
export function readCodexConfig(file: string): CodexConfigFacts {
  const facts: CodexConfigFacts = { model_provider: null, providers: new Map() };
  const text = readTextQuiet(file);
  if (text === null) return facts;
  let section: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/^\s+|\s+$/g, "");
    if (line === "" || line.startsWith("#")) continue;
    const head = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (head?.[1] !== undefined) {
      section = head[1].split(".").map((k) =>
        k
          .trim()
          .replace(/^"(.*)"$/, "$1")
          .replace(/^'(.*)'$/, "$1"),
      );
      continue;
    }
    const kv = /^([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|'[^']*'|true|false)\s*(#.*)?$/.exec(line);
    if (kv?.[1] === undefined || kv[2] === undefined) continue;
    const value = kv[2].startsWith('"') ? (JSON.parse(kv[2]) as string) : kv[2].replace(/^'(.*)'$/, "$1");
    if (section.length === 0 && kv[1] === "model_provider") facts.model_provider = value;
    else if (section.length === 2 && section[0] === "model_providers" && section[1] !== undefined) {
      const table = facts.providers.get(section[1]) ?? new Map<string, string>();
      table.set(kv[1], value);
      facts.providers.set(section[1], table);
    }
  }
  return facts;
}
