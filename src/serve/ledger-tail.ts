import { closeSync, constants, fstatSync, openSync, readSync, readdirSync } from "node:fs";
import path from "node:path";
import { isValidItemId } from "../core/ids.js";
import { LEDGER_SUFFIX, type Layout } from "../store/layout.js";

// Reads a wave's ledgers incrementally: each file from where the last read stopped, complete lines
// only (a line being appended right now is left for the next read). Lines are parsed loosely
// (an object with an integer seq and an event name): the server relays what the controller wrote,
// including event kinds newer than this reader, and never judges or repairs a ledger.
//
// Events of one wave are spread over several files. The writer appends seq n (fsynced) before
// n+1, but a reader can see n+1 in one file before n in another it read a moment earlier. So
// `read()` releases only the contiguous run after the last released seq; a gap is held back until
// it fills, or until it has outlived `gapGraceMs` (a seq the writer never wrote).

export interface RawEvent {
  seq: number;
  event: string;
  at: string | null;
  /** The line as written, for relaying byte for byte. */
  line: string;
  value: Record<string, unknown>;
}

const CHUNK = 256 * 1024;

export class LedgerTail {
  private readonly offsets = new Map<string, { pos: number; ino: number }>();
  private held: RawEvent[] = [];
  private gapSince: number | null = null;
  private released: number;

  constructor(
    private readonly layout: Layout,
    private readonly wave: string,
    o: { afterSeq?: number; gapGraceMs?: number; now?: () => number } = {},
  ) {
    this.released = o.afterSeq ?? 0;
    this.gapGraceMs = o.gapGraceMs ?? 2000;
    this.now = o.now ?? Date.now;
  }

  private readonly gapGraceMs: number;
  private readonly now: () => number;

  get lastSeq(): number {
    return this.released;
  }

  files(): string[] {
    const out = [this.layout.waveLedger(this.wave)];
    let names: string[] = [];
    try {
      names = readdirSync(this.layout.itemLedgersDir(this.wave));
    } catch {
      // no item has an event yet
    }
    for (const n of names.sort()) {
      if (n.endsWith(LEDGER_SUFFIX) && isValidItemId(n.slice(0, -LEDGER_SUFFIX.length))) out.push(path.join(this.layout.itemLedgersDir(this.wave), n));
    }
    return out;
  }

  /** New events, in seq order, after the last released one. */
  read(): RawEvent[] {
    for (const f of this.files()) this.held.push(...this.readFile(f).filter((e) => e.seq > this.released));
    this.held.sort((a, b) => a.seq - b.seq);
    const out: RawEvent[] = [];
    let i = 0;
    for (; i < this.held.length; i++) {
      const e = this.held[i];
      if (e === undefined) break;
      if (e.seq <= this.released) continue; // the same seq twice: relay it once
      if (e.seq !== this.released + 1) break;
      out.push(e);
      this.released = e.seq;
    }
    this.held = this.held.slice(i);
    if (this.held.length === 0) this.gapSince = null;
    else if (this.gapSince === null) this.gapSince = this.now();
    else if (this.now() - this.gapSince >= this.gapGraceMs) {
      // The missing seq never came: release the rest rather than stall the stream forever.
      for (const e of this.held) {
        if (e.seq > this.released) {
          out.push(e);
          this.released = e.seq;
        }
      }
      this.held = [];
      this.gapSince = null;
    }
    return out;
  }

  /** True while events are held back behind a gap (the caller should read again soon). */
  get waiting(): boolean {
    return this.held.length > 0;
  }

  private readFile(file: string): RawEvent[] {
    let fd: number;
    try {
      fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      return [];
    }
    const out: RawEvent[] = [];
    try {
      const st = fstatSync(fd);
      const size = st.size;
      const known = this.offsets.get(file);
      // A file cut shorter (a torn tail repaired) or replaced (moved aside and rewritten) is read
      // again from its start; seqs already relayed are dropped by read().
      let pos = known !== undefined && known.ino === st.ino && known.pos <= size ? known.pos : 0;
      let rest = Buffer.alloc(0);
      const buf = Buffer.alloc(CHUNK);
      while (pos + rest.length < size) {
        const n = readSync(fd, buf, 0, Math.min(CHUNK, size - pos - rest.length), pos + rest.length);
        if (n === 0) break;
        let data = Buffer.concat([rest, buf.subarray(0, n)]);
        let nl = data.indexOf(0x0a);
        while (nl >= 0) {
          const e = parseLine(data.subarray(0, nl).toString("utf8"));
          if (e !== null) out.push(e);
          pos += nl + 1;
          data = data.subarray(nl + 1);
          nl = data.indexOf(0x0a);
        }
        rest = Buffer.from(data);
      }
      this.offsets.set(file, { pos, ino: st.ino });
    } finally {
      closeSync(fd);
    }
    return out;
  }
}

export function parseLine(line: string): RawEvent | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.seq !== "number" || !Number.isSafeInteger(o.seq) || o.seq < 1 || typeof o.event !== "string") return null;
  return { seq: o.seq, event: o.event, at: typeof o.at === "string" ? o.at : null, line, value: o };
}
