import { readdirSync } from "node:fs";
import path from "node:path";

// Codex writes each session to `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<thread id>.jsonl`
// (measured with 0.171), with a `token_count` event after every model call. Its `--json` stream
// names the session (`thread.started`) but reports usage only as its one turn ends, so the runner
// follows this file to see a budget crossed mid-run (log-signals.ts reads its lines).

/** Where the agent's Codex keeps its state: CODEX_HOME, else ~/.codex, in the agent's environment. */
export const codexHomeOf = (env: NodeJS.ProcessEnv): string | null => {
  const explicit = (env.CODEX_HOME ?? "").trim();
  if (explicit !== "") return explicit;
  const home = (env.HOME ?? "").trim();
  return home === "" ? null : path.join(home, ".codex");
};

const newestNames = (dir: string, n: number): string[] => {
  try {
    return readdirSync(dir)
      .filter((d) => /^\d+$/.test(d))
      .sort()
      .slice(-n);
  } catch {
    return [];
  }
};

/**
 * The rollout file of session `threadId`, or null until Codex has created it. Only the newest two
 * day directories are listed (a session started a moment ago; two covers midnight), so a long
 * history costs nothing.
 */
export function findCodexRollout(codexHome: string, threadId: string): string | null {
  const root = path.join(codexHome, "sessions");
  const days: string[] = [];
  for (const y of newestNames(root, 2))
    for (const m of newestNames(path.join(root, y), 2)) for (const d of newestNames(path.join(root, y, m), 2)) days.push(path.join(root, y, m, d));
  for (const dir of days.sort().slice(-2).reverse()) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    const hit = names.find((f) => f.startsWith("rollout-") && f.endsWith(`-${threadId}.jsonl`));
    if (hit !== undefined) return path.join(dir, hit);
  }
  return null;
}
