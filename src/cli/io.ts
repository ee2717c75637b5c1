import { DxError, describeError, isDxError, type ErrorReport } from "../errors.js";

// The only place that writes to the terminal. Commands get an Io so tests can capture output and
// so `--json` output stays one clean document on stdout.

export interface Io {
  out(text: string): void;
  err(text: string): void;
  readonly stdoutIsTty: boolean;
}

// A closed or broken stdout/stderr (`dx-batch start … | head -1`, a vanished terminal) must never
// stop the controller (issue #10): EPIPE and EIO are caught on the stream, later output to it is
// dropped, and the fact is said once on the other stream if that one still works.
const OUTPUT_ERRORS = new Set(["EPIPE", "EIO", "ECONNRESET", "ERR_STREAM_DESTROYED"]);
const broken = { out: false, err: false };
let guarded = false;

export function guardOutputStreams(): void {
  if (guarded) return;
  guarded = true;
  const watch = (stream: NodeJS.WriteStream, which: "out" | "err"): void => {
    stream.on("error", (e: unknown) => {
      const code = e instanceof Error && "code" in e ? String(e.code) : "";
      if (!OUTPUT_ERRORS.has(code)) throw e;
      if (broken[which]) return;
      broken[which] = true;
      const other = which === "out" ? "err" : "out";
      if (!broken[other]) write(other, `warning: output_dropped: std${which} failed (${code}); its output is dropped, the wave goes on\n`);
    });
  };
  watch(process.stdout, "out");
  watch(process.stderr, "err");
}

function write(which: "out" | "err", text: string): void {
  if (broken[which]) return;
  const stream = which === "out" ? process.stdout : process.stderr;
  try {
    stream.write(text);
  } catch (e) {
    // A synchronous write (a file or a TTY) throws instead of emitting.
    const code = e instanceof Error && "code" in e ? String(e.code) : "";
    if (!OUTPUT_ERRORS.has(code)) throw e;
    broken[which] = true;
  }
}

export const processIo: Io = {
  out: (t) => write("out", t.endsWith("\n") ? t : `${t}\n`),
  err: (t) => write("err", t.endsWith("\n") ? t : `${t}\n`),
  stdoutIsTty: process.stdout.isTTY === true,
};

export const printJson = (io: Io, value: unknown): void => io.out(JSON.stringify(value, null, 2));

/** SPEC §2: one line `error: <reason_code>: <message>`, then `remedy: …` where one exists. */
export function reportError(io: Io, e: unknown): number {
  const r = errorReport(e);
  io.err(`error: ${r.code}: ${oneLine(r.message)}`);
  if (isDxError(e) && e.detail) io.err(indented(e.detail));
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

/** `warning: <first line>`, and any further lines (another program's words) indented under it. */
export function warningText(line: string): string {
  const [first = "", ...rest] = line.split("\n");
  return rest.length === 0 ? `warning: ${first}` : `warning: ${first}\n${indented(rest.join("\n"))}`;
}

/** Another program's message, whole: every non-empty line indented under ours. */
export const indented = (s: string): string =>
  s
    .split("\n")
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0)
    .map((l) => `    ${l}`)
    .join("\n");

export const usageError = (message: string, remedy?: string): DxError => new DxError("usage", message, { remedy });
