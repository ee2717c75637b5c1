import { randomBytes } from "node:crypto";
import { closeSync, constants, fsyncSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { DxError } from "../errors.js";
import path from "node:path";
import { FILE_MODE } from "./layout.js";
import { ensureSecureDir, insecure, permissionOr } from "./secure-dir.js";

// The few durable file operations the store is built from. Every one of them is synchronous: the
// controller appends, writes a snapshot or takes a lease between two awaits and must not interleave
// with itself, and a sync call cannot be half done when another part of the loop runs.

export const errno = (e: unknown): string | undefined => (e instanceof Error && "code" in e && typeof e.code === "string" ? e.code : undefined);

let counter = 0;
/** Unique within this host: pid, a counter and randomness (pids alone repeat across containers). */
export function uniqueSuffix(): string {
  counter += 1;
  return `${process.pid}-${counter}-${randomBytes(4).toString("hex")}`;
}

export function randomToken(): string {
  return randomBytes(12).toString("hex");
}

/** `mkdir -p` (0700); under a registered state root every directory on the way is checked (secure-dir.ts). */
/**
 * Open flags of the store: the final component is never followed (SPEC §15.5). The directories
 * above it were checked by ensureSecureDir, so no path under a root passes through a symlink.
 */
export const OPEN_FLAGS = {
  read: constants.O_RDONLY | constants.O_NOFOLLOW,
  readWrite: constants.O_RDWR | constants.O_NOFOLLOW,
  append: constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
} as const;

/** What an open error of the store means: a symlink where a file should be, or no permission. */
export function openFailure(e: unknown, file: string): unknown {
  if (errno(e) === "ELOOP") return insecure(file, "is a symbolic link", `remove ${file} (dx-batch never writes or reads through a link under its roots)`);
  return permissionOr(e, file);
}

/** openSync with O_NOFOLLOW, its errors told apart (openFailure). */
export function openNoFollow(file: string, flags: keyof typeof OPEN_FLAGS, mode = FILE_MODE): number {
  try {
    return openSync(file, OPEN_FLAGS[flags], mode);
  } catch (e) {
    throw openFailure(e, file);
  }
}

export const isDxErrorCode = (e: unknown, code: string): boolean => e instanceof DxError && e.code === code;

export function ensureDir(dir: string): void {
  ensureSecureDir(dir);
}

/** Make a rename, link or unlink in `dir` durable. Some platforms refuse fsync on a directory. */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, "r");
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    const code = errno(e);
    if (code !== "EINVAL" && code !== "EISDIR" && code !== "EPERM" && code !== "EBADF") throw e;
  } finally {
    closeSync(fd);
  }
}

export function writeAll(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}

/**
 * Whether a write waits for the disk (fsync of the file, and of its directory after a rename, link
 * or unlink). Default true. Only files whose loss or rollback in a machine crash is harmless skip
 * it; docs/architecture.md, "Durability and group commit", says which and why.
 */
export interface SyncOption {
  sync?: boolean;
}

/** A file's content: whole, or as pieces of text written in order (a large file never held as one string). */
export type FileData = string | Buffer | Iterable<string>;

const CHUNK_BYTES = 256 * 1024;
/**
 * One buffer the pieces are encoded into, reused by every write (they are synchronous, so never
 * two at once). Joining pieces into chunk strings and a new Buffer per chunk made each snapshot of
 * a large wave leave about 3 KB per item of strings in V8's large-object space and of buffers
 * outside it until the next full collection: 10 MB of resident size at 3,000 items, per snapshot.
 */
let chunk: Buffer | null = null;

function writeData(fd: number, data: FileData): void {
  if (typeof data === "string") return writeAll(fd, Buffer.from(data, "utf8"));
  if (Buffer.isBuffer(data)) return writeAll(fd, data);
  const buf = (chunk ??= Buffer.allocUnsafe(CHUNK_BYTES));
  let used = 0;
  for (const piece of data) {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: a piece that may not fit goes after a flush.
    const most = piece.length * 3;
    if (used + most > CHUNK_BYTES && used > 0) {
      writeAll(fd, buf.subarray(0, used));
      used = 0;
    }
    if (most > CHUNK_BYTES) writeAll(fd, Buffer.from(piece, "utf8"));
    else used += buf.write(piece, used, "utf8");
  }
  if (used > 0) writeAll(fd, buf.subarray(0, used));
}

/** Write `data` to a new file next to `target` (same filesystem, so it can be renamed or linked). */
export function writeTempFile(target: string, data: FileData, o: SyncOption = {}): string {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${uniqueSuffix()}`);
  const fd = openSync(tmp, "wx", FILE_MODE);
  try {
    writeData(fd, data);
    if (o.sync !== false) fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkQuiet(tmp);
    throw e;
  }
  closeSync(fd);
  return tmp;
}

export function unlinkQuiet(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // gone already, or never made: nothing to clean
  }
}

/** Replace `target` atomically: readers see the old content or the new one, never a mix. */
export function writeFileDurable(target: string, data: FileData): void {
  writeFileAtomic(target, data, { sync: true });
}

/** Replace `target` atomically; durable when it returns unless `sync: false`. */
export function writeFileAtomic(target: string, data: FileData, o: SyncOption): void {
  ensureDir(path.dirname(target));
  replaceFile(target, data, o);
  if (o.sync !== false) fsyncDir(path.dirname(target));
}

/**
 * Temp file (fsynced unless `sync: false`) renamed over `target`, in a directory that exists; the
 * rename itself is not synced. For files whose loss in a host crash costs nothing (the runner's
 * job files, runner/fs-util.ts).
 */
export function replaceFile(target: string, data: FileData, o: SyncOption = {}): void {
  const tmp = writeTempFile(target, data, o);
  try {
    renameSync(tmp, target);
  } catch (e) {
    unlinkQuiet(tmp);
    throw e;
  }
}

/**
 * Create `target` only if it does not exist, with its whole content already in place: link(2) of a
 * fully written temp file is an exclusive create that no reader can catch half written (an
 * O_EXCL open followed by a write can be read empty). Returns false when `target` exists.
 */
export function createExclusive(target: string, data: string, o: SyncOption = {}): boolean {
  ensureDir(path.dirname(target));
  const tmp = writeTempFile(target, data, o);
  try {
    linkSync(tmp, target);
  } catch (e) {
    if (errno(e) === "EEXIST") return false;
    throw e;
  } finally {
    unlinkQuiet(tmp);
  }
  if (o.sync !== false) fsyncDir(path.dirname(target));
  return true;
}

/** The file's text, or null when it does not exist. */
export function readTextIfExists(file: string): string | null {
  try {
    const fd = openSync(file, OPEN_FLAGS.read);
    try {
      return readFileSync(fd, "utf8");
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if (errno(e) === "ENOENT" || errno(e) === "ENOTDIR") return null;
    throw openFailure(e, file);
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** A short blocking pause for the few sync retry loops (a lease someone else is taking over). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

export const shorten = (s: string, max = 200): string => (s.length > max ? `${s.slice(0, max)}…` : s);
