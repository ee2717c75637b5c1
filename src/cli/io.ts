import { DxError, describeError, isDxError, type ErrorReport } from "../errors.js";

// The only place that writes to the terminal. Commands get an Io so tests can capture output and
// so `--json` output stays one clean document on stdout.

export interface Io {
  out(text: string): void;
  err(text: string): void;
  readonly stdoutIsTty: boolean;
}

export const processIo: Io = {
  out: (t) => void process.stdout.write(t.endsWith("\n") ? t : `${t}\n`),
  err: (t) => void process.stderr.write(t.endsWith("\n") ? t : `${t}\n`),
  stdoutIsTty: process.stdout.isTTY === true,
};

export const printJson = (io: Io, value: unknown): void => io.out(JSON.stringify(value, null, 2));

/** SPEC §2: one line `error: <reason_code>: <message>`, then `remedy: …` where one exists. */
export function reportError(io: Io, e: unknown): number {
  const r = errorReport(e);
  io.err(`error: ${r.code}: ${oneLine(r.message)}`);
  if (r.remedy) io.err(`remedy: ${oneLine(r.remedy)}`);
  if (process.env.DX_BATCH_DEBUG && !isDxError(e) && e instanceof Error && e.stack) io.err(e.stack);
  return r.exitCode;
}

/** Code, message, remedy and exit code of any error, all from the table in src/errors.ts. */
function errorReport(e: unknown): ErrorReport {
  if (isDxError(e)) return { code: e.code, message: e.message, remedy: e.remedy, exitCode: e.exitCode };
  const sys = systemError(e);
  // An unwritable, missing or full path is the environment's problem, not a dx-batch bug.
  if (sys !== null) return describeError("filesystem_error", sys.message, { path: sys.path });
  return describeError("orchestrator_exception", e instanceof Error ? e.message : String(e));
}

const FS_ERRNO = new Set(["EACCES", "EPERM", "EROFS", "ENOTDIR", "EISDIR", "ENOSPC", "EDQUOT", "EMFILE", "ENFILE"]);

/** A Node system error from a file operation (it carries errno code, syscall and path). */
function systemError(e: unknown): { message: string; path: string } | null {
  if (!(e instanceof Error) || !("code" in e) || !("syscall" in e) || !("path" in e)) return null;
  if (typeof e.code !== "string" || !FS_ERRNO.has(e.code) || typeof e.path !== "string") return null;
  return { message: e.message, path: e.path };
}

const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, " ").trim();

export const usageError = (message: string, remedy?: string): DxError => new DxError("usage", message, { remedy });
