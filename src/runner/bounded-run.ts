import { spawn } from "node:child_process";

// Runs a short command and returns when it exits, not when its output closes. A dx-runner `start`
// leaves the agent running; if that daemon inherited stdout, waiting for EOF (as execa does) would
// block until the agent ends. So: collect output until exit, allow a brief drain for what is
// already in the pipe, then let go of the streams. A hard timeout kills the command itself.

export interface BoundedResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Set when the command could not be started at all (ENOENT, EACCES). */
  spawnError: string | null;
}

export interface BoundedOptions {
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  cwd?: string;
  /** How long to keep reading after exit. */
  drainMs?: number;
  maxOutputBytes?: number;
}

export function runBounded(argv: readonly string[], o: BoundedOptions): Promise<BoundedResult> {
  const [file, ...args] = argv;
  const max = o.maxOutputBytes ?? 1024 * 1024;
  return new Promise((resolve) => {
    if (file === undefined) {
      resolve({ exitCode: null, signal: null, stdout: "", stderr: "", timedOut: false, spawnError: "empty command" });
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let timedOut = false;
    let settled = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    const child = spawn(file, args, { env: o.env, stdio: ["ignore", "pipe", "pipe"], ...(o.cwd === undefined ? {} : { cwd: o.cwd }) });
    const finish = (spawnError: string | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        timedOut,
        spawnError,
      });
    };
    child.stdout.on("data", (b: Buffer) => {
      if (outLen < max) out.push(b);
      outLen += b.length;
    });
    child.stderr.on("data", (b: Buffer) => {
      if (errLen < max) err.push(b);
      errLen += b.length;
    });
    child.once("error", (e) => finish(e.message));
    child.once("exit", (code, signal) => {
      exit = { code, signal };
      setTimeout(() => finish(null), o.drainMs ?? 150).unref();
    });
    child.once("close", () => finish(null));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
      // If even the kill is not reported, do not wait on it.
      setTimeout(() => finish(null), 1_000).unref();
    }, o.timeoutMs);
  });
}
