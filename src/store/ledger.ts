import { closeSync, constants, createReadStream, existsSync, fsyncSync, ftruncateSync, fstatSync, openSync, readdirSync, readSync } from "node:fs";
import path from "node:path";
import { isValidItemId } from "../core/ids.js";
import { eventItemId, type WaveEvent } from "../core/events.js";
import { DxError } from "../errors.js";
import { ensureDir, errno, fsyncDir, OPEN_FLAGS, openFailure, openNoFollow, shorten, writeAll } from "./fsx.js";
import { LEDGER_SUFFIX, type Layout } from "./layout.js";
import { parseWaveEvent } from "./schema.js";

// The ledgers are the truth of a wave (SPEC §5): one wave ledger for wave events and one per item
// for item events, all numbered by one per-wave `seq`. Events are appended (O_APPEND) as they
// happen and fsynced in groups (LedgerWriter.sync): the controller performs no effect of an event
// before the sync that covers it, and writes no snapshot ahead of the durable ledger.
//
// Damage is told apart by where it is. A torn last line is what a crash during an append leaves:
// it is ignored and reported, and truncated before anything is appended after it (otherwise the
// next event would be glued onto it and the damage would move into the middle). A bad line
// anywhere else is corruption and stops the load: replaying around it would silently fold a
// different history.

const NL = 0x0a;
const TAIL_CHUNK = 64 * 1024;

export interface TornTail {
  file: string;
  /** 1-based line number of the torn line. */
  line: number;
  /** The start of the torn text, for the report. */
  text: string;
}

export interface TornTailRepair extends TornTail {
  removedBytes: number;
}

/** Lines at the end of a ledger that no writer of the wave appended (issue #10): ignored and reported. */
export interface ForeignTail {
  file: string;
  /** 1-based number of the first foreign line. */
  line: number;
  lines: number;
}

export interface LedgerRead {
  /** Every event of the wave (after `afterSeq`), merged across the ledger files, in seq order. */
  events: WaveEvent[];
  tornTails: TornTail[];
  foreignTails: ForeignTail[];
  /** `<ledger>.foreign.<n>` files: bytes the writer moved aside (ledger_foreign_bytes). */
  foreignFiles: string[];
  /** Lines of controllers that had lost the wave, left out (see dropSuperseded). */
  superseded: SupersededLine[];
  /** Every controller tenure the ledger records, in seq order. */
  tenures: Tenure[];
}

const corrupt = (file: string, line: number, detail: string): DxError =>
  new DxError("ledger_corrupt", `${file}:${line}: ${detail}`, {
    remedy: `the wave cannot be replayed past this line: restore ${path.basename(file)} from a backup, or move this line and every later one out of the file, then run dx-batch doctor`,
  });

const lockLost = (wave: string, e: WaveEvent): DxError =>
  new DxError(
    "controller_lock_lost",
    `this controller no longer holds wave ${wave} (another controller took it over); seq ${e.seq} (${e.event}) was not written`,
    {
      remedy: `nothing to do here: the controller that holds it now carries on; see dx-batch status --wave-id ${wave}`,
    },
  );

// ---- the tail of a file ----------------------------------------------------------------------

/** Offset just after the last newline before `end`, or 0 when there is none. */
function lineStartBefore(fd: number, end: number): number {
  const buf = Buffer.alloc(TAIL_CHUNK);
  let pos = end;
  while (pos > 0) {
    const n = Math.min(TAIL_CHUNK, pos);
    pos -= n;
    readExactly(fd, buf, n, pos);
    const i = buf.subarray(0, n).lastIndexOf(NL);
    if (i >= 0) return pos + i + 1;
  }
  return 0;
}

function readExactly(fd: number, buf: Buffer, length: number, position: number): void {
  let off = 0;
  while (off < length) {
    const n = readSync(fd, buf, off, length - off, position + off);
    if (n === 0) throw new Error(`unexpected end of file at ${position + off}`);
    off += n;
  }
}

function readRange(fd: number, start: number, end: number): Buffer {
  const buf = Buffer.alloc(end - start);
  readExactly(fd, buf, end - start, start);
  return buf;
}

const parsesAsJson = (text: string): boolean => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

/** Where the torn last line starts: no final newline, or a final line that is not JSON. */
function tornTailStart(fd: number): { start: number; size: number } | null {
  const size = fstatSync(fd).size;
  if (size === 0) return null;
  const last = readRange(fd, size - 1, size)[0];
  if (last !== NL) return { start: lineStartBefore(fd, size), size };
  const start = lineStartBefore(fd, size - 1);
  return parsesAsJson(readRange(fd, start, size - 1).toString("utf8")) ? null : { start, size };
}

function countLines(fd: number, end: number): number {
  const buf = Buffer.alloc(TAIL_CHUNK);
  let lines = 0;
  for (let pos = 0; pos < end;) {
    const n = Math.min(TAIL_CHUNK, end - pos);
    readExactly(fd, buf, n, pos);
    for (let i = buf.indexOf(NL, 0); i >= 0 && i < n; i = buf.indexOf(NL, i + 1)) lines += 1;
    pos += n;
  }
  return lines;
}

/**
 * Cut a torn last line off `file` (doctor --fix, resume, and the writer before its first append).
 * Returns what was cut, or null when the file ends cleanly or does not exist. Only for a ledger no
 * live controller is appending to: a line being written right now looks torn too.
 */
export function repairTornTail(file: string): TornTailRepair | null {
  let fd: number;
  try {
    fd = openSync(file, OPEN_FLAGS.readWrite);
  } catch (e) {
    if (errno(e) === "ENOENT") return null;
    throw openFailure(e, file);
  }
  try {
    const torn = tornTailStart(fd);
    if (torn === null) return null;
    const text = readRange(fd, torn.start, Math.min(torn.size, torn.start + 400))
      .toString("utf8")
      .replace(/\n$/, "");
    const line = countLines(fd, torn.start) + 1;
    ftruncateSync(fd, torn.start);
    fsyncSync(fd);
    return { file, line, text: shorten(text), removedBytes: torn.size - torn.start };
  } finally {
    closeSync(fd);
  }
}

/** Every ledger file of a wave that exists: the wave ledger first, then item ledgers by name. */
export function ledgerFiles(layout: Layout, wave: string): { file: string; item: string | null }[] {
  const out: { file: string; item: string | null }[] = [];
  const waveLedger = layout.waveLedger(wave);
  if (existsSync(waveLedger)) out.push({ file: waveLedger, item: null });
  let names: string[];
  try {
    names = readdirSync(layout.itemLedgersDir(wave));
  } catch (e) {
    if (errno(e) === "ENOENT") return out;
    throw e;
  }
  for (const name of names.sort()) {
    if (!name.endsWith(LEDGER_SUFFIX)) continue;
    const item = name.slice(0, -LEDGER_SUFFIX.length);
    if (isValidItemId(item)) out.push({ file: layout.itemLedger(wave, item), item });
  }
  return out;
}

export function repairTornTails(layout: Layout, wave: string): TornTailRepair[] {
  return ledgerFiles(layout, wave)
    .map((f) => repairTornTail(f.file))
    .filter((r): r is TornTailRepair => r !== null);
}

/**
 * The highest seq on disk, from the last complete line of each file (a torn tail is skipped). A
 * cheap cross-check for a writer re-opening a wave: its lastSeq must not be below this.
 */
export function lastLedgerSeq(layout: Layout, wave: string): number {
  let max = 0;
  for (const { file } of ledgerFiles(layout, wave)) {
    const fd = openNoFollow(file, "read");
    try {
      const torn = tornTailStart(fd);
      const end = torn === null ? fstatSync(fd).size : torn.start;
      if (end === 0) continue;
      const start = lineStartBefore(fd, end - 1);
      let value: unknown;
      try {
        value = JSON.parse(readRange(fd, start, end - 1).toString("utf8"));
      } catch {
        throw corrupt(file, countLines(fd, start) + 1, "not JSON");
      }
      const parsed = parseWaveEvent(value);
      if (!parsed.ok) throw corrupt(file, countLines(fd, start) + 1, parsed.detail);
      max = Math.max(max, parsed.value.seq);
    } finally {
      closeSync(fd);
    }
  }
  return max;
}

// ---- foreign bytes (issue #10, SPEC §15.3) -----------------------------------------------------
// An agent runs as the same user and can append to a ledger. The writer knows the size it last
// wrote; whatever is beyond it is moved aside to `<ledger>.foreign.<n>` and cut off before the
// next append, so the ledger never holds a line nobody numbered in its middle.

export const FOREIGN_INFIX = ".foreign.";
/** A line longer than this is never an event of ours: judged foreign without being parsed. */
const MAX_EVENT_LINE = 1024 * 1024;

export interface ForeignMove {
  file: string;
  moved_to: string;
  bytes: number;
}

/** `<ledger>.foreign.<n>` files of a wave. */
export function foreignLedgerFiles(layout: Layout, wave: string): string[] {
  const out: string[] = [];
  for (const dir of [layout.waveDir(wave), layout.itemLedgersDir(wave)]) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names.sort()) if (name.includes(`${LEDGER_SUFFIX}${FOREIGN_INFIX}`)) out.push(path.join(dir, name));
  }
  return out;
}

/**
 * The end of the last line, scanning back from the end, that is an event belonging in this file:
 * everything after it is foreign. Lines over MAX_EVENT_LINE are not parsed.
 */
export function validPrefixEnd(fd: number, item: string | null): number {
  let end = fstatSync(fd).size;
  while (end > 0) {
    const terminated = readRange(fd, end - 1, end)[0] === NL;
    const start = lineStartBefore(fd, terminated ? end - 1 : end);
    const len = (terminated ? end - 1 : end) - start;
    if (terminated && len <= MAX_EVENT_LINE) {
      let value: unknown = null;
      try {
        value = JSON.parse(readRange(fd, start, end - 1).toString("utf8"));
      } catch {
        value = null;
      }
      const parsed = value === null ? null : parseWaveEvent(value);
      if (parsed?.ok && eventItemId(parsed.value) === item) return end;
    }
    end = start;
  }
  return 0;
}

/** Copy the bytes of `fd` from `from` to its end into a new `<file>.foreign.<n>` (0600), then cut them off. */
export function moveForeignTail(fd: number, file: string, from: number): ForeignMove | null {
  const size = fstatSync(fd).size;
  if (size <= from) return null;
  let n = 1;
  let out: number;
  for (;;) {
    try {
      out = openSync(`${file}${FOREIGN_INFIX}${n}`, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      break;
    } catch (e) {
      if (errno(e) !== "EEXIST") throw e;
      n += 1;
    }
  }
  const movedTo = `${file}${FOREIGN_INFIX}${n}`;
  try {
    const buf = Buffer.alloc(TAIL_CHUNK);
    for (let pos = from; pos < size;) {
      const len = Math.min(TAIL_CHUNK, size - pos);
      readExactly(fd, buf, len, pos);
      writeAll(out, buf.subarray(0, len));
      pos += len;
    }
    fsyncSync(out);
  } finally {
    closeSync(out);
  }
  ftruncateSync(fd, from);
  fsyncSync(fd);
  fsyncDir(path.dirname(file));
  return { file, moved_to: movedTo, bytes: size - from };
}

/** doctor --fix: move every foreign tail of a wave aside (only while no controller writes it). */
export function moveForeignTails(layout: Layout, wave: string): ForeignMove[] {
  const out: ForeignMove[] = [];
  for (const { file, item } of ledgerFiles(layout, wave)) {
    const fd = openNoFollow(file, "readWrite");
    try {
      const m = moveForeignTail(fd, file, validPrefixEnd(fd, item));
      if (m !== null) out.push(m);
    } finally {
      closeSync(fd);
    }
  }
  return out;
}

// ---- writing ---------------------------------------------------------------------------------

export interface LedgerWriterOptions {
  /** The seq of the last event already in the ledger (the loaded state's seq); 0 for a new wave. */
  lastSeq: number;
  /** Open files kept for appending; the least recently used is closed beyond this. */
  maxOpenFiles?: number;
  /** The writer's controller epoch, stamped on every event that does not carry one. */
  epoch?: number;
  /**
   * Asked before every append: does this writer still hold its epoch (controller-lock.ts
   * `holdsLock`)? When it answers false nothing is written and `controller_lock_lost` is thrown.
   */
  fence?: () => boolean;
}

/**
 * Appends the events of one wave, each as one JSON line. `write()` puts a line in its file (the
 * page cache) and `sync()` makes every line written since the last sync durable: one fsync per
 * file touched, plus one per directory that gained a ledger (group commit). `append()` is both at
 * once. The caller's write-ahead rule is "no effect before the sync that covers its event"
 * (controller/session.ts).
 *
 * One writer per wave at a time: the controller lock guarantees it, and the fence checks it before
 * every line, so a controller that lost the lock (frozen past its heartbeat, then taken over)
 * writes nothing more. A line that still slips through the instant between the check and the
 * write carries the old epoch and is voided by every reader (readLedgerEvents).
 *
 * A failed sync (ENOSPC, EIO) leaves nothing half made: every file written since the last good
 * sync is cut back to its durable size, so the durable ledger stays the prefix of seqs it was,
 * and `lastSeq` goes back with it. The caller folds its state back to that seq as well.
 */
export class LedgerWriter {
  private last: number;
  /** The seq of the last event a sync (or the open) made durable. */
  private durableSeq: number;
  private readonly maxOpen: number;
  /** Open append descriptors, in least-recently-used order. */
  private readonly fds = new Map<string, Handle>();
  /** The size of each file after this writer's last append to it: anything beyond is foreign. */
  private readonly sizes = new Map<string, number>();
  /** The size of each file as of its last sync: a failed sync cuts the file back to it. */
  private readonly durableSizes = new Map<string, number>();
  /** Files written since the last sync. */
  private readonly dirty = new Set<string>();
  private readonly foreign: ForeignMove[] = [];
  /** Files whose tail this writer has checked (and repaired) since it last failed to write them. */
  private readonly checked = new Set<string>();
  /**
   * The size of each checked file whose descriptor was evicted, by item ("" for the wave ledger),
   * in place of its entries in the maps above. Keyed by the item id the wave state holds anyway,
   * not by the file's path: about 40 bytes per item instead of some 220 (issue #14, flat memory).
   */
  private readonly evicted = new Map<string, number>();
  private readonly dirs = new Set<string>();
  private readonly repaired: TornTailRepair[] = [];
  private readonly epoch: number | undefined;
  private readonly fence: (() => boolean) | undefined;

  constructor(
    private readonly layout: Layout,
    private readonly wave: string,
    opts: LedgerWriterOptions,
  ) {
    if (!Number.isSafeInteger(opts.lastSeq) || opts.lastSeq < 0) {
      throw new DxError("ledger_seq_invalid", `lastSeq ${String(opts.lastSeq)} is not a non-negative integer`);
    }
    this.last = opts.lastSeq;
    this.durableSeq = opts.lastSeq;
    this.maxOpen = Math.max(1, opts.maxOpenFiles ?? 32);
    this.epoch = opts.epoch;
    this.fence = opts.fence;
    layout.waveDir(wave); // validates the wave id now rather than at the first append
  }

  get lastSeq(): number {
    return this.last;
  }

  /** Whether lines were written since the last sync. */
  get pending(): boolean {
    return this.dirty.size > 0;
  }

  /** Torn tails this writer cut off before appending after them. */
  get repairs(): readonly TornTailRepair[] {
    return this.repaired;
  }

  /** Foreign bytes moved aside since the last call; the session records each as ledger_foreign_bytes. */
  takeForeignMoves(): ForeignMove[] {
    return this.foreign.splice(0);
  }

  /** Append one event durably (write, then sync); returns the ledger file it went to. */
  append(draft: WaveEvent): string {
    const file = this.write(draft);
    this.sync();
    return file;
  }

  /**
   * Write one event's line to its ledger, not yet durable: `sync()` makes it so. A failed write
   * cuts its file back to the size before it and throws (`disk_full` on ENOSPC/EDQUOT).
   */
  write(draft: WaveEvent): string {
    const event: WaveEvent = this.epoch === undefined || draft.epoch !== undefined ? draft : { ...draft, epoch: this.epoch };
    const parsed = parseWaveEvent(event);
    if (!parsed.ok) {
      throw new DxError("ledger_event_invalid", `refusing to append a malformed ${String(event.event)} event: ${parsed.detail}`);
    }
    if (event.seq <= this.last) {
      throw new DxError("ledger_seq_not_increasing", `event seq ${event.seq} is not above the last appended seq ${this.last}`, {
        remedy: "another process may be writing this wave: check its controller.lock",
      });
    }
    if (event.event === "wave_created" && event.wave_id !== this.wave) {
      throw new DxError("ledger_event_invalid", `wave_created for ${event.wave_id} appended to the ledger of ${this.wave}`);
    }
    const item = eventItemId(event);
    const file = item === null ? this.layout.waveLedger(this.wave) : this.layout.itemLedger(this.wave, item);
    const handle = this.open(file, item);
    if (this.fence !== undefined && !this.fence()) throw lockLost(this.wave, event);
    const line = Buffer.from(`${JSON.stringify(event)}\n`, "utf8");
    const known = this.checkForeign(file, item, handle.fd);
    try {
      writeAll(handle.fd, line);
    } catch (e) {
      // The file may now end in part of this line: cut it back to the last size written (a full
      // disk must not leave a torn line that a later append would glue onto). Lines written
      // before it stay, for the next sync.
      truncateBack(handle.fd, known);
      if (!this.dirty.has(file)) {
        this.drop(file);
        this.checked.delete(file);
      }
      throw appendError(e, event.seq, file);
    }
    this.sizes.set(file, known + line.length);
    this.dirty.add(file);
    this.last = event.seq;
    return file;
  }

  /**
   * Make every line written since the last sync durable: fsync each file touched once, then each
   * directory that gained a file. On failure every file of the group is cut back to its durable
   * size (so no later seq survives an earlier one that was lost) and the error is thrown.
   */
  sync(): void {
    if (this.dirty.size === 0) return;
    const files = [...this.dirty];
    const dirs = new Set<string>();
    try {
      for (const file of files) {
        const h = this.fds.get(file);
        if (h !== undefined) {
          fsyncSync(h.fd);
          if (h.syncDir) dirs.add(path.dirname(file));
        } else {
          // Closed since it was written (close() before a sync): fsync the file through a
          // descriptor of its own, and its directory, since whether it is new is not known now.
          const fd = openNoFollow(file, "readWrite");
          try {
            fsyncSync(fd);
          } finally {
            closeSync(fd);
          }
          dirs.add(path.dirname(file));
        }
      }
      for (const dir of dirs) fsyncDir(dir);
    } catch (e) {
      const seq = this.last;
      this.rollBack(files);
      throw appendError(e, seq, files.length === 1 ? (files[0] ?? "") : `${files.length} ledger files`);
    }
    for (const file of files) {
      const h = this.fds.get(file);
      if (h !== undefined) h.syncDir = false;
      this.durableSizes.set(file, this.sizes.get(file) ?? 0);
    }
    this.dirty.clear();
    this.durableSeq = this.last;
    this.evict();
  }

  close(): void {
    for (const file of [...this.fds.keys()]) this.drop(file);
  }

  /** A failed sync: back to the last durable size of every file of the group, and to its seq. */
  private rollBack(files: readonly string[]): void {
    for (const file of files) {
      const h = this.fds.get(file);
      const size = this.durableSizes.get(file) ?? 0;
      if (h !== undefined) truncateBack(h.fd, size);
      else {
        try {
          const fd = openNoFollow(file, "readWrite");
          try {
            truncateBack(fd, size);
          } finally {
            closeSync(fd);
          }
        } catch {
          // the next open checks the tail again (repairTornTail, validPrefixEnd)
        }
      }
      this.sizes.set(file, size);
      this.drop(file);
      this.checked.delete(file);
    }
    this.dirty.clear();
    this.last = this.durableSeq;
  }

  /** Move bytes beyond the size this writer last wrote aside; returns the size to append at. */
  private checkForeign(file: string, item: string | null, fd: number): number {
    const size = fstatSync(fd).size;
    const known = this.sizes.get(file) ?? size;
    if (size > known) {
      // The append descriptor is write-only: the move reads through a descriptor of its own.
      // A complete event line that belongs here is no foreign byte: it is a superseded
      // controller's line (written between its fence check and its write), which every reader
      // must still see to void and report it (SPEC §15.3). Only what follows the last such line moves.
      const rfd = openNoFollow(file, "readWrite");
      try {
        const m = moveForeignTail(rfd, file, Math.max(known, validPrefixEnd(rfd, item)));
        if (m !== null) this.foreign.push(m);
      } finally {
        closeSync(rfd);
      }
    }
    // Shorter than written: someone cut the file; append after what is there (and after any
    // superseded line kept above).
    const now = size > known ? fstatSync(fd).size : size;
    this.sizes.set(file, now);
    if (!this.dirty.has(file)) this.durableSizes.set(file, now);
    return now;
  }

  private open(file: string, item: string | null): Handle {
    const cached = this.fds.get(file);
    if (cached !== undefined) {
      this.fds.delete(file);
      this.fds.set(file, cached);
      return cached;
    }
    const dir = path.dirname(file);
    if (!this.dirs.has(dir)) {
      ensureDir(dir);
      this.dirs.add(dir);
    }
    const key = item ?? "";
    const known = this.evicted.get(key);
    if (known !== undefined) {
      // Written and checked by this writer before its descriptor was evicted: as if never closed.
      this.evicted.delete(key);
      this.sizes.set(file, known);
      this.durableSizes.set(file, known);
      this.checked.add(file);
    }
    if (!this.checked.has(file)) {
      const repair = repairTornTail(file);
      if (repair !== null) this.repaired.push(repair);
      this.checked.add(file);
    }
    const existed = existsSync(file);
    const handle: Handle = { fd: openNoFollow(file, "append"), syncDir: !existed, key };
    if (!this.sizes.has(file)) {
      // First open by this writer: what follows the last event that belongs here is foreign.
      const rfd = openNoFollow(file, "readWrite");
      try {
        const m = moveForeignTail(rfd, file, validPrefixEnd(rfd, item));
        if (m !== null) this.foreign.push(m);
      } finally {
        closeSync(rfd);
      }
      this.sizes.set(file, fstatSync(handle.fd).size);
    }
    this.fds.set(file, handle);
    this.evict(file);
    return handle;
  }

  /**
   * Close the least recently used descriptors beyond maxOpen; a file awaiting its sync keeps its own.
   * What the writer knows of an evicted file moves to `evicted`, by item. `opening` is the file
   * being opened for a write: with every other descriptor awaiting its sync, it is the least recent
   * clean one, and closing it would leave the write a closed descriptor.
   */
  private evict(opening: string | null = null): void {
    if (this.fds.size <= this.maxOpen) return;
    for (const [file, h] of this.fds) {
      if (this.fds.size <= this.maxOpen) break;
      if (this.dirty.has(file) || file === opening) continue;
      this.drop(file);
      // Not dirty: the size written is the durable one.
      const size = this.sizes.get(file);
      if (size !== undefined && this.checked.has(file)) this.evicted.set(h.key, size);
      this.sizes.delete(file);
      this.durableSizes.delete(file);
      this.checked.delete(file);
    }
  }

  private drop(file: string): void {
    const h = this.fds.get(file);
    if (h === undefined) return;
    this.fds.delete(file);
    try {
      closeSync(h.fd);
    } catch {
      // closing a descriptor that failed a write: nothing more to do with it
    }
  }
}

/** An open append descriptor: `syncDir` until the file's creation is durable; `key` as in `evicted`. */
type Handle = { fd: number; syncDir: boolean; key: string };

/** Cut a failed append back to the last size written; best effort (the disk may be gone too). */
function truncateBack(fd: number, size: number): void {
  try {
    ftruncateSync(fd, size);
    fsyncSync(fd);
  } catch {
    // the next open checks the tail again (repairTornTail, validPrefixEnd)
  }
}

const DISK_FULL = new Set(["ENOSPC", "EDQUOT"]);

/** A failed append as a DxError: `disk_full` for ENOSPC/EDQUOT (the wave pauses), else ledger_write_failed. */
function appendError(e: unknown, seq: number, file: string): DxError {
  const code = errno(e);
  if (code !== undefined && DISK_FULL.has(code)) {
    return new DxError("disk_full", `no space left to append seq ${seq} to ${file} (${code})`, {
      remedy: "free space on the artifact directory's disk, then dx-batch resume",
      cause: e,
    });
  }
  return new DxError("ledger_write_failed", `could not append seq ${seq} to ${file}: ${e instanceof Error ? e.message : String(e)}`, {
    remedy: "check free space and permissions of the artifact directory, then dx-batch resume",
    cause: e,
  });
}

// ---- reading ---------------------------------------------------------------------------------

interface Located {
  event: WaveEvent;
  file: string;
  line: number;
}

/** Yield the lines of a file as it streams in, and whether each ended with a newline. */
async function* lines(file: string): AsyncGenerator<{ text: string; terminated: boolean }> {
  let parts: Buffer[] = [];
  // Opened here with O_NOFOLLOW; the stream owns and closes the descriptor.
  const fd = openSync(file, OPEN_FLAGS.read);
  for await (const chunk of createReadStream(file, { fd })) {
    if (!Buffer.isBuffer(chunk)) throw new Error("expected a byte stream");
    let from = 0;
    for (let i = chunk.indexOf(NL); i >= 0; i = chunk.indexOf(NL, from)) {
      parts.push(chunk.subarray(from, i));
      yield { text: Buffer.concat(parts).toString("utf8"), terminated: true };
      parts = [];
      from = i + 1;
    }
    if (from < chunk.length) parts.push(chunk.subarray(from));
  }
  if (parts.length > 0) yield { text: Buffer.concat(parts).toString("utf8"), terminated: false };
}

/**
 * One ledger line judged: an event that belongs in this file, or why not. The order of seqs is
 * checked once superseded lines are set aside (readLedgerEvents), since a stale writer's line may
 * legitimately repeat a seq.
 */
function judgeLine(text: string, item: string | null): { ok: true; event: WaveEvent } | { ok: false; detail: string; json: boolean } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Never quote the line: it may be anything an agent wrote (say where and why, never what).
    return { ok: false, detail: "not JSON", json: false };
  }
  const parsed = parseWaveEvent(value);
  if (!parsed.ok) return { ok: false, detail: parsed.detail, json: true };
  const e = parsed.value;
  const owner = eventItemId(e);
  if (owner !== item) {
    return {
      ok: false,
      detail: owner === null ? `${e.event} belongs in the wave ledger` : `event of item ${owner} in the ledger of ${item ?? "the wave"}`,
      json: true,
    };
  }
  return { ok: true, event: e };
}

/**
 * The events of one ledger file, checked line by line. Bad lines are judged by what follows them:
 * a bad line with a good event after it is corruption (`ledger_corrupt`, never skipped); bad lines
 * that only run to the end of the file were appended by nobody who numbers events (a crash's torn
 * line, or an agent's write into the artifacts) and are left out and reported: one unterminated
 * or non-JSON last line as a torn tail, anything more as a foreign tail.
 */
async function readFile(file: string, item: string | null): Promise<{ events: Located[]; torn: TornTail | null; foreign: ForeignTail | null }> {
  const events: Located[] = [];
  // The run of bad lines since the last good one: its first line and why, and the last line seen.
  let bad: { line: number; detail: string; text: string; count: number; lastTerminated: boolean; json: boolean } | null = null;

  let n = 0;
  try {
    for await (const l of lines(file)) {
      n += 1;
      const j = judgeLine(l.text, item);
      if (j.ok && l.terminated) {
        if (bad !== null) throw corrupt(file, bad.line, bad.detail);
        events.push({ event: j.event, file, line: n });
        continue;
      }
      const detail = j.ok ? "no final newline" : j.detail;
      if (bad === null) bad = { line: n, detail, text: l.text, count: 0, lastTerminated: l.terminated, json: !j.ok && j.json };
      bad.count += 1;
      bad.lastTerminated = l.terminated;
    }
  } catch (e) {
    if (errno(e) === "ENOENT") return { events: [], torn: null, foreign: null };
    throw openFailure(e, file);
  }
  if (bad === null) return { events, torn: null, foreign: null };
  if (bad.count === 1 && (!bad.lastTerminated || !bad.json)) return { events, torn: { file, line: bad.line, text: shorten(bad.text) }, foreign: null };
  return { events, torn: null, foreign: { file, line: bad.line, lines: bad.count } };
}

/** A line written by a controller after another had taken the wave over: voided, reported. */
export interface SupersededLine {
  file: string;
  line: number;
  seq: number;
  event: string;
  epoch: number;
  /** The epoch of the tenure that voids it. */
  by_epoch: number;
}

/** Where a controller tenure begins: its first event's seq and its epoch. */
export interface Tenure {
  seq: number;
  epoch: number;
}

const epochOf = (e: WaveEvent): number => e.epoch ?? 0;
/** Events that open a tenure: the wave's creation (epoch 1 from the start), and every takeover. */
const opensTenure = (e: WaveEvent): boolean => e.event === "controller_acquired" || (e.event === "wave_created" && e.epoch !== undefined);

/**
 * Set aside the lines of superseded writers (SPEC §15.3): a line whose epoch is below that of a
 * tenure opened at or before its seq was written by a controller that had lost the wave, in the
 * instant between its last fence check and its write. It is dropped and reported, never folded,
 * and never makes a read fail. Returns the kept lines (in seq order), the dropped ones, and the
 * tenures.
 */
function dropSuperseded(all: Located[]): { kept: Located[]; dropped: SupersededLine[]; tenures: Tenure[] } {
  // Seq order; at one seq, higher epochs first, so a takeover's line is seen before a stale one.
  all.sort((a, b) => a.event.seq - b.event.seq || epochOf(b.event) - epochOf(a.event));
  const kept: Located[] = [];
  const dropped: SupersededLine[] = [];
  const tenures: Tenure[] = [];
  let current = 0;
  for (const l of all) {
    const ep = epochOf(l.event);
    if (ep < current) {
      dropped.push({ file: l.file, line: l.line, seq: l.event.seq, event: l.event.event, epoch: ep, by_epoch: current });
      continue;
    }
    if (opensTenure(l.event)) {
      current = Math.max(current, ep);
      tenures.push({ seq: l.event.seq, epoch: ep });
    }
    kept.push(l);
  }
  return { kept, dropped, tenures };
}

/** The epoch in force at `seq`: that of the last tenure opened at or before it (0 if none). */
export function epochAt(tenures: readonly Tenure[], seq: number): number {
  let ep = 0;
  for (const t of tenures) if (t.seq <= seq) ep = Math.max(ep, t.epoch);
  return ep;
}

/**
 * Read a wave's ledgers: every line checked, files merged by seq. A torn last line of a file is
 * left out and reported; the lines of a superseded writer are left out and reported; any other
 * bad line, an event in the wrong file, a seq out of order in its file or used twice throws
 * `ledger_corrupt` naming the file and line.
 */
export async function readLedgerEvents(layout: Layout, wave: string, opts: { afterSeq?: number } = {}): Promise<LedgerRead> {
  const all: Located[] = [];
  const tornTails: TornTail[] = [];
  const foreignTails: ForeignTail[] = [];
  for (const { file, item } of ledgerFiles(layout, wave)) {
    const r = await readFile(file, item);
    for (const e of r.events) all.push(e);
    if (r.torn !== null) tornTails.push(r.torn);
    if (r.foreign !== null) foreignTails.push(r.foreign);
  }
  const { kept, dropped, tenures } = dropSuperseded(all);
  // Within each file the kept lines must follow one another.
  const lastInFile = new Map<string, Located>();
  for (const l of [...kept].sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1))) {
    const prev = lastInFile.get(l.file);
    if (prev !== undefined && l.event.seq <= prev.event.seq) throw corrupt(l.file, l.line, `seq ${l.event.seq} does not follow seq ${prev.event.seq}`);
    lastInFile.set(l.file, l);
  }
  for (let i = 1; i < kept.length; i++) {
    const prev = kept[i - 1];
    const cur = kept[i];
    if (prev !== undefined && cur !== undefined && prev.event.seq === cur.event.seq) {
      throw corrupt(cur.file, cur.line, `seq ${cur.event.seq} is also used at ${prev.file}:${prev.line}`);
    }
  }
  const after = opts.afterSeq ?? 0;
  return {
    events: kept.filter((l) => l.event.seq > after).map((l) => l.event),
    tornTails,
    foreignTails,
    foreignFiles: foreignLedgerFiles(layout, wave),
    superseded: dropped,
    tenures,
  };
}
