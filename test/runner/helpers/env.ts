import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { REPO } from "./build.js";

// Shared test scaffolding: temp workspaces with git worktrees, fixture PATHs, polling with generous
// ceilings, and the bookkeeping that lets afterEach kill every process group a test started.

export const FIXTURES = path.join(REPO, "test", "fixtures", "bin");
export const fixture = (name: string): string => path.join(FIXTURES, name);

const tempDirs: string[] = [];
const groups = new Set<number>();

export function tempDir(prefix = "dx-runner-test-"): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

export const trackGroup = (pgid: number): void => void groups.add(pgid);

/** afterEach: SIGKILL every tracked process group, then remove the temp dirs. */
export function cleanup(): void {
  for (const g of groups) {
    try {
      process.kill(-g, "SIGKILL");
    } catch {
      // already gone
    }
  }
  groups.clear();
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main", ...args], { cwd, encoding: "utf8" });
}

export interface Workspace {
  root: string;
  logDir: string;
  /** A git worktree at `<root>/<item>/repo`; with a first commit unless `unborn`. */
  worktree(item: string, opts?: { unborn?: boolean }): string;
  prompt(text: string): string;
}

export function makeWorkspace(): Workspace {
  const base = tempDir();
  const root = path.join(base, "agents");
  const logDir = path.join(base, "runner");
  mkdirSync(root);
  let n = 0;
  return {
    root,
    logDir,
    worktree(item, opts = {}) {
      const wt = path.join(root, item, "repo");
      mkdirSync(wt, { recursive: true });
      git(wt, "init", "-q");
      if (!opts.unborn) {
        writeFileSync(path.join(wt, "README.md"), "# test\n");
        git(wt, "add", "README.md");
        git(wt, "commit", "-q", "-m", "init");
      }
      return wt;
    },
    prompt(text) {
      const p = path.join(base, `prompt-${++n}.txt`);
      writeFileSync(p, text, { mode: 0o600 });
      return p;
    },
  };
}

/** The test process's env with the fixture CLIs first on PATH. */
export const fixtureEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...process.env,
  PATH: `${FIXTURES}:${process.env.PATH ?? "/usr/bin:/bin"}`,
  ...extra,
});

export async function waitFor<T>(
  fn: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  what: string,
  timeoutMs = 30_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Non-zombie processes whose process group is `pgid` (Linux /proc). */
export function groupPids(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const s = readFileSync(`/proc/${name}/stat`, "utf8");
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      if (Number(f[2]) === pgid && f[0] !== "Z" && f[0] !== "X") out.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

export function pidAlive(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = s.slice(s.lastIndexOf(")") + 2).split(" ")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

export const readJson = (p: string): unknown => JSON.parse(readFileSync(p, "utf8"));
