import path from "node:path";
import type { ProviderConfig } from "../../config/types.js";
import type { ProviderAvailability } from "../port.js";
import { available, checkBinary, hasEnv, maxParallel, pickModel, runQuick, unavailable } from "./common.js";
import type { LaunchContext, LaunchPlan, PreflightOptions, Provider } from "./types.js";

// Codex headless (REFERENCE §3, §6). Measured with Codex 0.171.0 against a mock Responses API
// (test/real-agents):
//
//   codex exec                     headless: one prompt, then exit
//     --json                       every event as a JSON line: the contract, reconnects/429s and
//                                  turn.completed usage are read from it
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
      if (hasEnv(env, "CODEX_API_KEY")) return available(name);
      if ((await runQuick([bin.path, "login", "status"], env, o.timeout_ms)).ok) return available(name);
      return unavailable(name, `${name}_auth_missing`, "no CODEX_API_KEY and `codex login status` fails");
    },
  };
}
