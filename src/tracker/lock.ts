import { serialize } from "../shared/key-queue.js";
import { randomUUID } from "node:crypto";
import { mkdir, open, readFile, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DxError } from "../errors.js";
import { isTrackerLockHolder } from "../store/checks.generated.js";
import { hostId } from "../store/identity.js";
import { monoAgeMs, monoStamp } from "../store/mono.js";
import { isSameProcess, processStartTime } from "../store/proc.js";

// Serializes every bd call (SPEC §10): inside one process through a promise queue per lock file,
// across processes through an exclusive-create lock file naming its holder. A holder that died
// leaves a stale file; it is broken under a second short-lived "breaker" file, so two waiters that
// both saw the same stale holder cannot both delete the lock (the second would delete the first's
// fresh one).
//
// A holder on this host is judged by its process (pid and start time, so a reused pid does not
// keep the lock) and its age on the monotonic clock (SPEC §15.3): a wall-clock jump of hours must
// neither break a live holder's lock nor keep a dead one's. Only a holder on another host, or a
// lock written before these fields, is aged by its file's mtime against the wall clock.

/** Run `fn` after every earlier call queued under `key` in this process has settled. */
export const serializeInProcess = serialize;

export interface FileLockOptions {
  /** Give up waiting for the lock after this long: `tracker_lock_timeout`. */
  timeoutMs: number;
  /** A lock older than this is stale whoever holds it (a hung holder, or a reused pid). */
  staleMs: number;
}

const errno = (e: unknown): string | undefined => (e instanceof Error && "code" in e && typeof e.code === "string" ? e.code : undefined);

// A file that exists but does not parse yet is being written by its creator: only stale once old.
const UNWRITTEN_GRACE_MS = 5_000;
const BREAKER_STALE_MS = 10_000;

async function isStale(file: string, staleMs: number): Promise<boolean> {
  let raw: string;
  let ageMs: number;
  try {
    const st = await stat(file);
    ageMs = Date.now() - st.mtimeMs;
    raw = await readFile(file, "utf8");
  } catch (e) {
    if (errno(e) === "ENOENT") return false; // released meanwhile: just retry the create
    throw e;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return ageMs > UNWRITTEN_GRACE_MS;
  }
  if (!isTrackerLockHolder(parsed)) return ageMs > UNWRITTEN_GRACE_MS;
  if (parsed.host === hostId()) {
    if (!isSameProcess({ pid: parsed.pid, start_time: parsed.start_time ?? null })) return true;
    // A hung holder: stale once it has held the lock that long on this host's monotonic clock.
    const held = monoAgeMs(parsed.acquired_mono);
    if (held !== null) return held > staleMs;
  }
  return ageMs > staleMs;
}

async function breakStale(file: string, staleMs: number): Promise<void> {
  const breaker = `${file}.break`;
  try {
    const fh = await open(breaker, "wx", 0o600);
    await fh.close();
  } catch (e) {
    if (errno(e) !== "EEXIST") throw e;
    try {
      const st = await stat(breaker);
      if (Date.now() - st.mtimeMs > BREAKER_STALE_MS) await unlink(breaker);
    } catch (e2) {
      if (errno(e2) !== "ENOENT") throw e2;
    }
    return;
  }
  try {
    if (await isStale(file, staleMs))
      await unlink(file).catch((e: unknown) => {
        if (errno(e) !== "ENOENT") throw e;
      });
  } finally {
    await unlink(breaker).catch(() => undefined);
  }
}

async function acquire(file: string, opts: FileLockOptions): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const token = randomUUID();
  const deadline = performance.now() + opts.timeoutMs;
  let wait = 10;
  for (;;) {
    try {
      const fh = await open(file, "wx", 0o600);
      try {
        const holder = { pid: process.pid, start_time: processStartTime(process.pid), host: hostId(), token, acquired_mono: monoStamp() };
        await fh.writeFile(JSON.stringify({ ...holder, acquired_at: new Date().toISOString() }));
      } finally {
        await fh.close();
      }
      return token;
    } catch (e) {
      if (errno(e) !== "EEXIST") throw e;
    }
    if (await isStale(file, opts.staleMs)) {
      await breakStale(file, opts.staleMs);
      continue;
    }
    if (performance.now() >= deadline) {
      throw new DxError("tracker_lock_timeout", `could not take the tracker lock ${file} within ${opts.timeoutMs} ms`, {
        remedy: `check which process holds ${file}; remove it if that process is gone`,
      });
    }
    await sleep(wait);
    wait = Math.min(wait * 2, 250);
  }
}

async function release(file: string, token: string): Promise<void> {
  try {
    const raw = await readFile(file, "utf8");
    const parsed: unknown = JSON.parse(raw);
    // Only ever delete our own lock: if it was broken as stale and retaken, it is not ours now.
    if (isTrackerLockHolder(parsed) && parsed.token === token) await unlink(file);
  } catch {
    // Already gone or replaced: nothing of ours to release.
  }
}

/** Run `fn` holding `file` exclusively, in this process and across processes. */
export function withFileLock<T>(file: string, fn: () => Promise<T>, opts: FileLockOptions): Promise<T> {
  const key = path.resolve(file);
  return serializeInProcess(key, async () => {
    const token = await acquire(key, opts);
    try {
      return await fn();
    } finally {
      await release(key, token);
    }
  });
}
