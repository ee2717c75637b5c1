import { createHash } from "node:crypto";
import { closeSync, ftruncateSync, openSync, renameSync, unlinkSync } from "node:fs";
import path from "node:path";
import { DxError } from "../errors.js";
import { isTicket } from "./checks.generated.js";
import {
  createExclusive,
  errno,
  OPEN_FLAGS,
  fsyncDir,
  readTextIfExists,
  shorten,
  sleepSync,
  unlinkQuiet,
  writeAll,
  writeTempFile,
  type SyncOption,
} from "./fsx.js";
import { sameIdentity, type ProcessIdentity } from "./identity.js";
import { isSameProcess, selfIdentity } from "./proc.js";

// An exclusive file naming its holder: the base of leases, item claims and the controller lock.
//
// Taking a free file is an exclusive create (link(2) of a complete temp file, see fsx). The hard
// part is changing a file that exists: taking over a stale one, releasing or rewriting one's own.
// A naive "read, decide it is stale, delete, create" lets two processes that both read the same
// stale holder both win: the second deletes the first one's fresh file. Renaming the stale file
// aside and checking what was moved does not help either: the loser may have moved the winner's
// fresh file and cannot put it back without a window where a third process creates its own.
//
// So every change of an existing file goes through a ticket for the file's current *generation*:
// the hash of its bytes, unique because every write carries a random token. To change generation
// G, a process creates the first free ticket `<file>.gen-<G>.<n>` (n = 0, 1, …; exclusive create),
// then looks at the tickets below its own. It holds the right to change G only if none of them is
// held: a ticket is held while its creator lives and has not withdrawn it. The holder re-reads the
// file; if it is still G it replaces (rename) or removes (unlink) it, else G is gone and nothing
// is done. Why exactly one process changes G:
//   - tickets are numbered by exclusive create, so two live processes never share a number, and of
//     two live ticket holders the higher one always sees the lower one held and backs off;
//   - a ticket stops being held only when its creator withdraws it (after losing) or dies, and a
//     dead process stays dead (its start time is part of the identity), so the decision of a
//     higher ticket never goes stale while it acts;
//   - nothing else changes a file that exists: a fresh acquirer's exclusive create fails on it;
//   - a generation never comes back (random token), so tickets of a changed generation are
//     harmless and are removed by whoever sees that it changed.
// A creator that dies holding a ticket (SIGKILL during the few syscalls of a change) blocks nobody:
// the next process takes the next ticket and sees the dead one as not held. Tickets of another
// host cannot be checked for life; they count as held for RIGHT_STALE_MS, far longer than a change
// takes.
//
// Durability (docs/architecture.md, "Durability and group commit"): tickets are never fsynced. A
// ticket only means something while its creator lives, and a machine crash that could undo its
// creation kills its creator too, after which it counts as not held whether it survived or not.
// The holder files themselves are fsynced unless the caller says `sync: false` (leases: a crash
// that loses one also ends its holder, and the next controller takes the wave's leases anyway).

const RIGHT_STALE_MS = 60_000;
const MAX_TICKETS = 10_000;
/** How long a sync acquire/release waits for another process's change of the same file. */
const DEFAULT_WAIT_MS = 5_000;

export interface FileGeneration {
  raw: string;
  gen: string;
}

export function readGeneration(file: string): FileGeneration | null {
  const raw = readTextIfExists(file);
  if (raw === null) return null;
  return { raw, gen: createHash("sha256").update(raw).digest("hex").slice(0, 20) };
}

let me: ProcessIdentity | undefined;
const self = (): ProcessIdentity => (me ??= selfIdentity());

const ticketPrefix = (file: string, gen: string): string => `${path.basename(file)}.gen-${gen}.`;
const ticketPath = (file: string, gen: string, n: number): string => path.join(path.dirname(file), `${ticketPrefix(file, gen)}${n}`);
const ticketContent = (withdrawn: boolean): string => JSON.stringify({ ...self(), at_ms: Date.now(), withdrawn });

function ticketHeld(ticket: string): boolean {
  const raw = readTextIfExists(ticket);
  if (raw === null) return false;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return false; // created whole by link(2): unreadable means damaged, not half written
  }
  // The ticket's shape is in shapes.ts, its check precompiled (checks.generated.ts).
  if (!isTicket(v) || v.withdrawn) return false;
  // One of ours from an earlier call that failed before withdrawing: we are not in it any more.
  if (sameIdentity(v, self())) return false;
  if (v.host === self().host) return isSameProcess(v);
  return Date.now() - v.at_ms < RIGHT_STALE_MS;
}

/**
 * Remove the tickets of a generation that is gone. They are numbered from 0 by exclusive create,
 * so they are removed by name, 0 up to the highest this process knows of (`upTo`, its own) and on
 * while more are found: listing the directory instead cost a readdir of every claim of the store
 * per release, quadratic over a large wave (issue #14). A number freed meanwhile by another remover
 * only ends the upward search early; what it leaves is a changed generation's ticket, which no
 * one reads again.
 */
function removeTickets(file: string, gen: string, upTo: number): void {
  for (let n = 0; ; n++) {
    let removed = true;
    try {
      unlinkSync(ticketPath(file, gen, n));
    } catch {
      removed = false;
    }
    if (!removed && n >= upTo) return;
  }
}

/**
 * Mark our ticket withdrawn, in place. Not deleted: its number must stay taken, or a newcomer could
 * take it and, seeing only dead tickets below, decide it holds the right while a higher ticket
 * that already decided the same is acting. Not replaced by rename either: if the winner has removed
 * the generation's tickets meanwhile, a rename would bring this one back as litter. A reader
 * catching the overwrite half done sees unparseable text, which reads as "not held": true now.
 */
function withdrawTicket(ticket: string): void {
  let fd: number;
  try {
    fd = openSync(ticket, OPEN_FLAGS.readWrite);
  } catch {
    return; // removed with its generation already
  }
  try {
    const text = Buffer.from(ticketContent(true), "utf8");
    writeAll(fd, text);
    ftruncateSync(fd, text.length);
  } catch {
    // A ticket we could not withdraw is ignored by our own later calls (ticketHeld) and by
    // everyone once this process exits.
  } finally {
    closeSync(fd);
  }
}

export type TransitionResult = "done" | "lost" | "moved";

/**
 * Run `apply` (which replaces or removes `file`) only if this process wins the right to change
 * generation `expected` and the file still is that generation. "lost": another live process is
 * changing it; "moved": it is no longer that generation.
 */
export function transition(file: string, expected: FileGeneration, apply: () => void, o: SyncOption = {}): TransitionResult {
  let n = 0;
  let mine: string | null = null;
  while (mine === null) {
    if (n >= MAX_TICKETS) throw new DxError("lock_contention", `${MAX_TICKETS} processes tried to change ${file} at once`);
    const t = ticketPath(file, expected.gen, n);
    if (createExclusive(t, ticketContent(false), { sync: false })) mine = t;
    else n += 1;
  }
  let outcome: TransitionResult = "lost";
  try {
    for (let m = 0; m < n; m++) if (ticketHeld(ticketPath(file, expected.gen, m))) return (outcome = "lost");
    const cur = readGeneration(file);
    if (cur === null || cur.gen !== expected.gen) return (outcome = "moved");
    apply();
    if (o.sync !== false) fsyncDir(path.dirname(file));
    return (outcome = "done");
  } finally {
    if (outcome === "lost") {
      withdrawTicket(mine);
      // The winner may have swept the generation's tickets before ours was there to be seen.
      let now: FileGeneration | null | undefined;
      try {
        now = readGeneration(file);
      } catch {
        now = undefined; // unreadable: leave the tickets, whoever changes it next sweeps them
      }
      if (now === null || (now !== undefined && now.gen !== expected.gen)) removeTickets(file, expected.gen, n);
    } else {
      removeTickets(file, expected.gen, n);
    }
  }
}

// ---- the three operations built on it ------------------------------------------------------

export interface HolderSpec<H> {
  /** The holder in the file's text, or null when the text is not a valid holder. */
  parse(raw: string): H | null;
  isMine(h: H): boolean;
  isStale(h: H): boolean;
}

export type AcquireResult<H> = { acquired: true; tookOverFrom?: H; replacedCorrupt?: string } | { acquired: false; holder: H };

export interface WaitOptions extends SyncOption {
  /** How long to wait while another process is changing the same file (default 5 s, on the monotonic clock). */
  waitMs?: number;
}

const pause = (): void => sleepSync(5 + Math.floor(Math.random() * 20));

/**
 * Take `file` with `content` (or the content made from the holder it replaces): create it when absent; when present, it is ours (re-entrant), held
 * by someone live (refused), or stale or unreadable (taken over, race-safe).
 */
export function acquireExclusive<H>(
  file: string,
  content: string | ((prev: H | null) => string),
  spec: HolderSpec<H>,
  opts: WaitOptions = {},
): AcquireResult<H> {
  const deadline = performance.now() + (opts.waitMs ?? DEFAULT_WAIT_MS);
  const text = typeof content === "string" ? () => content : content;
  let seen: H | null = null;
  for (;;) {
    if (createExclusive(file, text(null), opts)) return { acquired: true };
    const cur = readGeneration(file);
    if (cur !== null) {
      const h = spec.parse(cur.raw);
      if (h !== null) {
        seen = h;
        if (spec.isMine(h)) return { acquired: true };
        if (!spec.isStale(h)) return { acquired: false, holder: h };
      }
      // The replacement may depend on what it replaces (the controller lock's epoch grows by one).
      const tmp = writeTempFile(file, text(h), opts);
      let r: TransitionResult;
      try {
        r = transition(file, cur, () => renameSync(tmp, file), opts);
      } finally {
        unlinkQuiet(tmp);
      }
      if (r === "done") return h === null ? { acquired: true, replacedCorrupt: shorten(cur.raw) } : { acquired: true, tookOverFrom: h };
      if (r === "lost") pause();
    }
    if (performance.now() > deadline) {
      if (seen !== null) return { acquired: false, holder: seen };
      throw new DxError("lock_contention", `${file} kept changing while it was being taken`, {
        remedy: "retry; if it persists, look for a process looping on it",
      });
    }
  }
}

/** Remove `file` if its holder is ours. False when it is absent, not ours, or not readable. */
export function releaseExclusive<H>(file: string, spec: Pick<HolderSpec<H>, "parse" | "isMine">, opts: WaitOptions = {}): boolean {
  return changeExclusive(
    file,
    spec.parse,
    (h) => spec.isMine(h),
    () => unlinkSync(file),
    opts,
  );
}

/** Replace `file` with `next(holder)` if its holder is ours. */
export function rewriteExclusive<H>(file: string, spec: Pick<HolderSpec<H>, "parse" | "isMine">, next: (h: H) => string, opts: WaitOptions = {}): boolean {
  let tmp: string | null = null;
  try {
    return changeExclusive(
      file,
      spec.parse,
      (h) => spec.isMine(h),
      (h) => {
        tmp = writeTempFile(file, next(h), opts);
        renameSync(tmp, file);
      },
      opts,
    );
  } finally {
    if (tmp !== null) unlinkQuiet(tmp);
  }
}

/** Remove `file` if its holder is stale or unreadable (doctor --fix). */
export function removeStaleExclusive<H>(
  file: string,
  spec: Pick<HolderSpec<H>, "parse" | "isStale">,
  opts: WaitOptions = {},
): { removed: boolean; holder: H | null } {
  let holder: H | null = null;
  const removed = changeExclusive(
    file,
    (raw) => {
      holder = spec.parse(raw);
      return { h: holder };
    },
    ({ h }) => h === null || spec.isStale(h),
    () => unlinkSync(file),
    opts,
  );
  return { removed, holder };
}

function changeExclusive<T>(file: string, parse: (raw: string) => T | null, allowed: (h: T) => boolean, apply: (h: T) => void, opts: WaitOptions): boolean {
  const deadline = performance.now() + (opts.waitMs ?? DEFAULT_WAIT_MS);
  for (;;) {
    const cur = readGeneration(file);
    if (cur === null) return false;
    const h = parse(cur.raw);
    if (h === null || !allowed(h)) return false;
    const r = transition(file, cur, () => apply(h), opts);
    if (r === "done") return true;
    if (performance.now() > deadline) return false;
    if (r === "lost") pause();
  }
}

// ---- reading ---------------------------------------------------------------------------------

export type HolderRead<H> = { kind: "ok"; holder: H } | { kind: "missing" } | { kind: "corrupt"; detail: string };

export function readHolder<H>(file: string, parse: (raw: string) => H | null): HolderRead<H> {
  let raw: string | null;
  try {
    raw = readTextIfExists(file);
  } catch (e) {
    return { kind: "corrupt", detail: `${file}: unreadable (${errno(e) ?? String(e)})` };
  }
  if (raw === null) return { kind: "missing" };
  const h = parse(raw);
  return h === null ? { kind: "corrupt", detail: `${file}: not a valid holder: ${JSON.stringify(shorten(raw, 120))}` } : { kind: "ok", holder: h };
}

/** JSON.parse that answers undefined instead of throwing. */
export function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}
