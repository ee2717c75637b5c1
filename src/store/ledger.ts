import { closeSync, createReadStream, existsSync, fsyncSync, ftruncateSync, fstatSync, openSync, readdirSync, readSync } from "node:fs";
import path from "node:path";
import { isValidItemId } from "../core/ids.js";
import { eventItemId, type WaveEvent } from "../core/events.js";
import { DxError } from "../errors.js";
import { ensureDir, errno, fsyncDir, shorten, writeAll } from "./fsx.js";
import { FILE_MODE, LEDGER_SUFFIX, type Layout } from "./layout.js";
import { parseWaveEvent } from "./schema.js";

// The ledgers are the truth of a wave (SPEC §5): one wave ledger for wave events and one per item
// for item events, all numbered by one per-wave `seq`. An event is appended (O_APPEND, fsync)
// before the snapshot changes, so a crash loses at most an event whose append never returned.
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

export interface LedgerRead {
  /** Every event of the wave (after `afterSeq`), merged across the ledger files, in seq order. */
  events: WaveEvent[];
  tornTails: TornTail[];
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
  new DxError("controller_lock_lost", `this controller no longer holds wave ${wave} (another controller took it over); seq ${e.seq} (${e.event}) was not written`, {
    remedy: `nothing to do here: the controller that holds it now carries on; see dx-batch status --wave-id ${wave}`,
  });

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
  for (let pos = 0; pos < end; ) {
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
    fd = openSync(file, "r+");
  } catch (e) {
    if (errno(e) === "ENOENT") return null;
    throw e;
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
    const fd = openSync(file, "r");
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
 * Appends the events of one wave, each as one JSON line, fsynced before append() returns. One
 * writer per wave at a time: the controller lock guarantees it, and the fence checks it before
 * every line, so a controller that lost the lock (frozen past its heartbeat, then taken over)
 * appends nothing more. A line that still slips through the instant between the check and the
 * write carries the old epoch and is voided by every reader (readLedgerEvents).
 */
export class LedgerWriter {
  private last: number;
  private readonly maxOpen: number;
  /** Open append descriptors, in least-recently-used order. */
  private readonly fds = new Map<string, { fd: number; syncDir: boolean }>();
  /** Files whose tail this writer has checked (and repaired) since it last failed to write them. */
  private readonly checked = new Set<string>();
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
    this.maxOpen = Math.max(1, opts.maxOpenFiles ?? 32);
    this.epoch = opts.epoch;
    this.fence = opts.fence;
    layout.waveDir(wave); // validates the wave id now rather than at the first append
  }

  get lastSeq(): number {
    return this.last;
  }

  /** Torn tails this writer cut off before appending after them. */
  get repairs(): readonly TornTailRepair[] {
    return this.repaired;
  }

  /** Append one event durably; returns the ledger file it went to. */
  append(draft: WaveEvent): string {
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
    const handle = this.open(file);
    if (this.fence !== undefined && !this.fence()) throw lockLost(this.wave, event);
    try {
      writeAll(handle.fd, Buffer.from(`${JSON.stringify(event)}\n`, "utf8"));
      fsyncSync(handle.fd);
      if (handle.syncDir) {
        fsyncDir(path.dirname(file));
        handle.syncDir = false;
      }
    } catch (e) {
      // The file may now end in part of this line: forget the descriptor and check the tail again
      // (and cut it) before the next append to this file.
      this.drop(file);
      this.checked.delete(file);
      throw new DxError("ledger_write_failed", `could not append seq ${event.seq} to ${file}: ${e instanceof Error ? e.message : String(e)}`, {
        remedy: "check free space and permissions of the artifact directory, then dx-batch resume",
        cause: e,
      });
    }
    this.last = event.seq;
    return file;
  }

  close(): void {
    for (const file of [...this.fds.keys()]) this.drop(file);
  }

  private open(file: string): { fd: number; syncDir: boolean } {
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
    if (!this.checked.has(file)) {
      const repair = repairTornTail(file);
      if (repair !== null) this.repaired.push(repair);
      this.checked.add(file);
    }
    const existed = existsSync(file);
    const handle = { fd: openSync(file, "a", FILE_MODE), syncDir: !existed };
    this.fds.set(file, handle);
    while (this.fds.size > this.maxOpen) {
      const oldest = this.fds.keys().next().value;
      if (oldest === undefined) break;
      this.drop(oldest);
    }
    return handle;
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

// ---- reading ---------------------------------------------------------------------------------

interface Located {
  event: WaveEvent;
  file: string;
  line: number;
}

/** Yield the lines of a file as it streams in, and whether each ended with a newline. */
async function* lines(file: string): AsyncGenerator<{ text: string; terminated: boolean }> {
  let parts: Buffer[] = [];
  for await (const chunk of createReadStream(file)) {
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

/** The events of one ledger file, checked line by line; its torn tail, if any. */
async function readFile(file: string, item: string | null): Promise<{ events: Located[]; torn: TornTail | null }> {
  const events: Located[] = [];
  let torn: TornTail | null = null;
  // Lines are judged one behind, so that only the last one may be torn.
  let pending: { text: string; terminated: boolean; line: number } | null = null;

  const judge = (p: { text: string; terminated: boolean; line: number }, isLast: boolean): void => {
    if (isLast && !p.terminated) {
      torn = { file, line: p.line, text: shorten(p.text) };
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(p.text);
    } catch {
      if (isLast) {
        torn = { file, line: p.line, text: shorten(p.text) };
        return;
      }
      throw corrupt(file, p.line, `not JSON: ${JSON.stringify(shorten(p.text, 80))}`);
    }
    const parsed = parseWaveEvent(value);
    if (!parsed.ok) throw corrupt(file, p.line, parsed.detail);
    const e = parsed.value;
    const owner = eventItemId(e);
    if (owner !== item) {
      throw corrupt(file, p.line, owner === null ? `${e.event} belongs in the wave ledger` : `event of item ${owner} in the ledger of ${item ?? "the wave"}`);
    }
    // The order within the file is checked once superseded lines are set aside (readLedgerEvents).
    events.push({ event: e, file, line: p.line });
  };

  let n = 0;
  try {
    for await (const l of lines(file)) {
      n += 1;
      if (pending !== null) judge(pending, false);
      pending = { ...l, line: n };
    }
  } catch (e) {
    if (errno(e) === "ENOENT") return { events: [], torn: null };
    throw e;
  }
  if (pending !== null) judge(pending, true);
  return { events, torn };
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
  for (const { file, item } of ledgerFiles(layout, wave)) {
    const r = await readFile(file, item);
    for (const e of r.events) all.push(e);
    if (r.torn !== null) tornTails.push(r.torn);
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
  return { events: kept.filter((l) => l.event.seq > after).map((l) => l.event), tornTails, superseded: dropped, tenures };
}
