import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, readFileSync, rmSync, statSync, unlinkSync, type Stats } from "node:fs";
import { replaceFile, writeAll } from "../store/fsx.js";
import { FILE_MODE } from "../store/layout.js";

// Small synchronous file helpers for the runner's job files. They are tiny (a pid, an exit code, a
// few hundred bytes of JSON), so sync reads keep `check` cheap and free of interleaving.

// A missing file is the usual answer here (a job's rc before its end, the files a start clears):
// asked without an exception, whose stack trace costs more than the system call (issue #14).

export function statQuiet(p: string): Stats | null {
  try {
    return statSync(p, { throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}

export function readTextQuiet(p: string, maxBytes = 1024 * 1024): string | null {
  try {
    const st = statSync(p, { throwIfNoEntry: false });
    if (st === undefined || !st.isFile() || st.size > maxBytes) return null;
    return readFileSync(p, "utf8");
  } catch {
    return null;
  }
}

/** A file holding one bare integer (`pid`, `rc`), as dx-runner writes them. */
export function readIntFile(p: string): number | null {
  const t = readTextQuiet(p, 64);
  if (t === null) return null;
  const s = t.trim();
  return /^-?[0-9]+$/.test(s) ? Number(s) : null;
}

/** Remove a file if it is there. A plain unlink first: rmSync's rimraf path costs more per call. */
export function removeQuiet(p: string): void {
  // lstat, not existsSync: a dangling symlink is there too, and goes.
  if (lstatSync(p, { throwIfNoEntry: false }) === undefined) return;
  try {
    unlinkSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    // Anything else (a directory, say) answers exactly as before.
    rmSync(p, { force: true });
  }
}

/**
 * Replace a job file whole (temp file, optional fsync, rename), mode 0600. The store's temp-file
 * path, not write-file-atomic's sync one, which registers and removes an exit handler for every
 * signal on each call: several job files a job made that a measurable share of the controller's
 * CPU (issue #14).
 */
export function writeFileAtomicSync(p: string, data: string, opts: { fsync?: boolean } = {}): void {
  replaceFile(p, data, { sync: opts.fsync ?? true });
}

/**
 * Write a job's pid file in place: created empty before the spawn, then the pid written onto it.
 * No temp file and no rename: each rename over a file also deletes an inode, and creates and
 * deletes are what a job's files cost most (issue #14; on ext4 without a journal every create
 * scans the inodes deleted in the last minutes). A reader sees "" (no pid yet, as before the
 * spawn) or the whole pid: a few bytes written at once onto an empty file, and the file's size
 * grows only after they are in place. Never fsynced: a pid names a process a host crash ends.
 */
export function writePidInPlace(p: string, data: string): void {
  const fd = openSync(p, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, FILE_MODE);
  try {
    writeAll(fd, Buffer.from(data, "utf8"));
  } finally {
    closeSync(fd);
  }
}

export const writeJsonAtomic = (p: string, value: unknown, opts: { fsync?: boolean } = {}): void =>
  writeFileAtomicSync(p, `${JSON.stringify(value, null, 2)}\n`, opts);

/** The last `bytes` of a file, without reading the rest. */
export function readTail(p: string, bytes: number): string {
  let fd: number;
  try {
    fd = openSync(p, "r");
  } catch {
    return "";
  }
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(size, bytes);
    const buf = Buffer.alloc(len);
    let off = 0;
    while (off < len) {
      const n = readSync(fd, buf, off, len - off, size - len + off);
      if (n <= 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

export type JsonObject = Record<string, unknown>;
export const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

export function parseJsonObject(text: string | null): JsonObject | null {
  if (text === null) return null;
  try {
    const v: unknown = JSON.parse(text);
    return isObject(v) ? v : null;
  } catch {
    return null;
  }
}
