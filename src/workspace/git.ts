import { execFile } from "node:child_process";

// git as a short subprocess: argv only, a timeout, a record instead of an exception. Run with
// Node's own execFile (no shell, none of execa's extra machinery): a dispatch runs a few of these,
// and their cost is the controller's (issue #14).

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

/** After a timeout's SIGTERM (git removes its lock files on it), SIGKILL this much later. */
const FORCE_KILL_AFTER_MS = 2_000;

export interface ExecGitOptions {
  cwd?: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  input?: string;
  /** Drop one final newline of stdout and stderr, as callers written for execa expect. Default true. */
  stripFinalNewline?: boolean;
}

const stripNl = (s: string): string => (s.endsWith("\r\n") ? s.slice(0, -2) : s.endsWith("\n") ? s.slice(0, -1) : s);

/** Run git with execFile; never throws. */
export function execGit(args: readonly string[], o: ExecGitOptions): Promise<GitResult> {
  return new Promise((resolve) => {
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const strip = o.stripFinalNewline ?? true;
    const child = execFile("git", args, { cwd: o.cwd, env: o.env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, windowsHide: true }, (err, out, errOut) => {
      clearTimeout(timer);
      if (killTimer !== undefined) clearTimeout(killTimer);
      const stdout = strip ? stripNl(out) : out;
      const stderr = strip ? stripNl(errOut) : errOut;
      if (timedOut) {
        resolve({ ok: false, exitCode: null, stdout, stderr, error: `git ${args.join(" ")}: no answer within ${o.timeoutMs} ms` });
      } else if (err === null) {
        resolve({ ok: true, exitCode: 0, stdout, stderr, error: null });
      } else if (typeof err.code === "number") {
        resolve({ ok: false, exitCode: err.code, stdout, stderr, error: null });
      } else {
        // Not run (ENOENT), killed by a signal, or more output than maxBuffer.
        resolve({ ok: false, exitCode: null, stdout, stderr, error: `git ${args.join(" ")}: ${err.message.split("\n")[0] ?? String(err.code)}` });
      }
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGTERM");
      killTimer = setTimeout(() => child.kill("SIGKILL"), FORCE_KILL_AFTER_MS);
    }, o.timeoutMs);
    // stdin is a pipe with execFile: closed at once (EOF), or after the input.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(o.input ?? "");
  });
}

export function git(args: readonly string[], opts: { cwd: string; timeoutMs?: number; input?: string }): Promise<GitResult> {
  return execGit(args, { cwd: opts.cwd, env: gitEnv(), timeoutMs: opts.timeoutMs ?? 60_000, ...(opts.input === undefined ? {} : { input: opts.input }) });
}
