import { DxError, isDxError } from "../errors.js";

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
  if (isDxError(e)) {
    io.err(`error: ${e.code}: ${oneLine(e.message)}`);
    if (e.detail) io.err(indented(e.detail));
    if (e.remedy) io.err(`remedy: ${oneLine(e.remedy)}`);
    return e.exitCode;
  }
  const sys = systemError(e);
  if (sys !== null) {
    // An unwritable, missing or full path is the environment's problem, not a dx-batch bug.
    io.err(`error: filesystem_error: ${oneLine(sys.message)}`);
    io.err(`remedy: check that ${sys.path} exists, is a directory where one is expected, and is writable (artifact_dir, runner_log_dir and workspace_root in the config)`);
    if (process.env.DX_BATCH_DEBUG && sys.stack) io.err(sys.stack);
    return 1;
  }
  const msg = e instanceof Error ? e.message : String(e);
  io.err(`error: orchestrator_exception: ${oneLine(msg)}`);
  io.err("remedy: this is a bug in dx-batch; rerun with DX_BATCH_DEBUG=1 for a stack trace and report it");
  if (process.env.DX_BATCH_DEBUG && e instanceof Error && e.stack) io.err(e.stack);
  return 1;
}

const FS_ERRNO = new Set(["EACCES", "EPERM", "EROFS", "ENOTDIR", "EISDIR", "ENOSPC", "EDQUOT", "EMFILE", "ENFILE"]);

/** A Node system error from a file operation (it carries errno code, syscall and path). */
function systemError(e: unknown): { message: string; path: string; stack: string | undefined } | null {
  if (!(e instanceof Error) || !("code" in e) || !("syscall" in e) || !("path" in e)) return null;
  if (typeof e.code !== "string" || !FS_ERRNO.has(e.code) || typeof e.path !== "string") return null;
  return { message: e.message, path: e.path, stack: e.stack };
}

const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, " ").trim();

/** Another program's message, whole: every non-empty line indented under ours. */
export const indented = (s: string): string =>
  s
    .split("\n")
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0)
    .map((l) => `    ${l}`)
    .join("\n");

export const usageError = (message: string, remedy?: string): DxError =>
  new DxError("usage", message, { remedy: remedy ?? "see `dx-batch <command> --help`" });
