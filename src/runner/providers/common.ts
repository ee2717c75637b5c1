import { accessSync, constants, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ProviderConfig } from "../../config/types.js";
import type { RunnerReason } from "../../core/reasons.js";
import type { ProviderAvailability } from "../port.js";
import { loadExeca } from "../../shared/lazy-execa.js";

// Offline checks shared by the providers: find a binary, run a short command with a timeout.
// Nothing here reaches a model or spends money (SPEC §9).

// Gemini CLI's `--version` loads its whole bundle: 0.2–2 s idle, measured 10.6 s on a loaded 2-core host.
export const DEFAULT_PREFLIGHT_TIMEOUT_MS = 30_000;

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of `cmd` on the PATH of `env` (or `cmd` itself when it holds a slash). */
export function resolveExecutable(cmd: string, env: NodeJS.ProcessEnv): string | null {
  if (cmd === "") return null;
  if (cmd.includes("/")) return isExecutableFile(cmd) ? path.resolve(cmd) : null;
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (dir === "") continue;
    const p = path.join(dir, cmd);
    if (isExecutableFile(p)) return path.resolve(p);
  }
  return null;
}

export interface QuickRun {
  ok: boolean;
  exitCode: number | null;
  timedOut: boolean;
  stdout: string;
}

/** A short command (`--version`, `auth status`) with a hard timeout; output is not waited on past it. */
export async function runQuick(argv: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number, cwd?: string): Promise<QuickRun> {
  const [file, ...args] = argv;
  if (file === undefined) return { ok: false, exitCode: null, timedOut: false, stdout: "" };
  try {
    const r = await (
      await loadExeca()
    )(file, args, {
      env,
      extendEnv: false,
      reject: false,
      timeout: timeoutMs,
      forceKillAfterDelay: 1_000,
      stdin: "ignore",
      maxBuffer: 1024 * 1024,
      ...(cwd === undefined ? {} : { cwd }),
    });
    return { ok: r.exitCode === 0 && !r.timedOut, exitCode: r.exitCode ?? null, timedOut: r.timedOut, stdout: String(r.stdout) };
  } catch {
    return { ok: false, exitCode: null, timedOut: false, stdout: "" };
  }
}

export const available = (provider: string): ProviderAvailability => ({ provider, ok: true, reason_code: null, detail: null });
export const unavailable = (provider: string, reason_code: RunnerReason, detail: string): ProviderAvailability => ({
  provider,
  ok: false,
  reason_code,
  detail,
});

/** Binary found and `--version` exits 0 in time; the failure, or the binary's path. */
export async function checkBinary(
  provider: string,
  bin: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ ok: true; path: string } | { ok: false; result: ProviderAvailability }> {
  const p = resolveExecutable(bin, env);
  if (p === null) return { ok: false, result: unavailable(provider, `${provider}_binary_missing`, `${bin} not found on PATH`) };
  const v = await runQuick([p, "--version"], env, timeoutMs);
  if (!v.ok) {
    const why = v.timedOut ? `timed out after ${timeoutMs} ms` : `exited ${v.exitCode ?? "abnormally"}`;
    return { ok: false, result: unavailable(provider, `${provider}_version_failed`, `${p} --version ${why}`) };
  }
  return { ok: true, path: p };
}

export const homeDir = (env: NodeJS.ProcessEnv): string => env.HOME ?? os.homedir();
export const hasEnv = (env: NodeJS.ProcessEnv, key: string): boolean => (env[key] ?? "").trim() !== "";
export const envTruthy = (env: NodeJS.ProcessEnv, key: string): boolean => /^(1|true|yes)$/i.test((env[key] ?? "").trim());

export const pickModel = (ctx: { model: string | null }, cfg: ProviderConfig | undefined, fallback: string): string => ctx.model ?? cfg?.model ?? fallback;

export const maxParallel = (cfg: ProviderConfig | undefined): number | null =>
  cfg?.max_parallel !== undefined && cfg.max_parallel > 0 ? cfg.max_parallel : null;
