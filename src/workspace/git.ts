import { execa } from "execa";

// git as a short subprocess: argv only, a timeout, a record instead of an exception.

export interface GitResult {
  ok: boolean;
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** Why it did not run or finish, when it did not (missing binary, timeout). */
  error: string | null;
}

// Variables that would point git at another repository than the one in cwd (set, for example,
// when dx-batch itself runs from a git hook). Messages are matched in C locale.
const GIT_REDIRECTS = ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY", "GIT_PREFIX", "GIT_NAMESPACE"];

function gitEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of GIT_REDIRECTS) delete env[k];
  env["LC_ALL"] = "C";
  env["GIT_TERMINAL_PROMPT"] = "0";
  // Reading status must not take index.lock in a worktree an agent is committing in.
  env["GIT_OPTIONAL_LOCKS"] = "0";
  return env;
}

export async function git(args: readonly string[], opts: { cwd: string; timeoutMs?: number; input?: string }): Promise<GitResult> {
  const r = await execa("git", args, {
    cwd: opts.cwd,
    env: gitEnv(),
    extendEnv: false,
    reject: false,
    timeout: opts.timeoutMs ?? 60_000,
    forceKillAfterDelay: 2_000,
    maxBuffer: 64 * 1024 * 1024,
    ...(opts.input === undefined ? { stdin: "ignore" as const } : { input: opts.input }),
  });
  const error = r.timedOut
    ? `git ${args.join(" ")}: no answer within ${opts.timeoutMs ?? 60_000} ms`
    : r.exitCode === undefined
      ? `git ${args.join(" ")}: ${r.shortMessage}`
      : null;
  return { ok: r.exitCode === 0, exitCode: r.exitCode ?? null, stdout: r.stdout, stderr: r.stderr, error };
}
