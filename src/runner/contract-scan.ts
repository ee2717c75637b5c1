import { createReadStream } from "node:fs";
import { isObject, type JsonObject } from "./fs-util.js";

// Finds the last `CONTRACT:JSON:` marker in an agent log (SPEC §7). The log may be plain text or a
// JSON-lines event stream (Claude Code stream-json, OpenCode --format json, Codex --json, Gemini
// stream-json), where the marker sits inside an escaped text field, possibly split over several
// delta events. The log is streamed in chunks and never held whole: a line longer than
// MAX_LINE_BYTES is skipped, and a pending contract is dropped past MAX_CONTRACT_BYTES.

export const CONTRACT_MARKER = "CONTRACT:JSON:";
export const MAX_CONTRACT_BYTES = 1024 * 1024;
const MAX_LINE_BYTES = 4 * 1024 * 1024;
const MARKER_BUF = Buffer.from(CONTRACT_MARKER);
const DELTA_BUF = Buffer.from('"delta"');

export type ScanResult = { kind: "found"; text: string } | { kind: "too_large"; bytes: number } | { kind: "none" };

interface Candidate {
  seq: number;
  text: string | null;
  too_large: boolean;
}

type Extract = { kind: "complete"; text: string; end: number } | { kind: "not_json"; text: string | null; end: number } | { kind: "incomplete" };

/** The JSON value that starts after a marker: a balanced `{…}` (strings respected), else the rest of its line. */
function extractAfter(s: string, from: number, final: boolean): Extract {
  let j = from;
  while (j < s.length && (s[j] === " " || s[j] === "\t" || s[j] === "\r" || s[j] === "\n")) j++;
  if (j >= s.length) return final ? { kind: "not_json", text: null, end: s.length } : { kind: "incomplete" };
  if (s[j] !== "{") {
    const nl = s.indexOf("\n", j);
    if (nl < 0 && !final) return { kind: "incomplete" };
    const end = nl < 0 ? s.length : nl;
    return { kind: "not_json", text: s.slice(from, end).trim(), end };
  }
  let depth = 0;
  let inStr = false;
  for (let k = j; k < s.length; k++) {
    const c = s[k];
    if (inStr) {
      if (c === "\\") k++;
      else if (c === '"') inStr = false;
    } else if (c === '"') inStr = true;
    else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") {
      depth--;
      if (depth === 0) return { kind: "complete", text: s.slice(j, k + 1), end: k + 1 };
    }
  }
  return { kind: "incomplete" };
}

/**
 * One continuous text (a plain log, or the concatenation of an agent's delta events). Keeps only
 * what can still matter: the text from the newest unresolved marker on, or a marker-sized tail.
 */
class TextStream {
  private buf = "";
  private pendingSeq: number | null = null;
  last: Candidate | null = null;

  feed(text: string, seq: number): void {
    this.buf += text;
    this.drain(seq, false);
  }

  finish(seq: number): void {
    this.drain(seq, true);
  }

  get pending(): boolean {
    return this.buf.includes(CONTRACT_MARKER);
  }

  private drain(seq: number, final: boolean): void {
    for (;;) {
      const i = this.buf.indexOf(CONTRACT_MARKER);
      if (i < 0) {
        this.buf = this.buf.slice(-(CONTRACT_MARKER.length - 1));
        this.pendingSeq = null;
        return;
      }
      // A contract that spans feeds counts from where its marker appeared.
      const at = this.pendingSeq ?? seq;
      const from = i + CONTRACT_MARKER.length;
      const r = extractAfter(this.buf, from, final);
      if (r.kind === "complete" || r.kind === "not_json") {
        const big = r.kind === "complete" && Buffer.byteLength(r.text) > MAX_CONTRACT_BYTES;
        this.last = { seq: at, text: big ? null : r.text, too_large: big };
        this.buf = this.buf.slice(r.end);
        this.pendingSeq = null;
        continue;
      }
      // Unbalanced so far. A later marker supersedes a broken earlier one.
      const next = this.buf.indexOf(CONTRACT_MARKER, from);
      if (next >= 0) {
        this.buf = this.buf.slice(next);
        this.pendingSeq = seq;
        continue;
      }
      if (final) {
        this.last = { seq: at, text: this.buf.slice(from).trim(), too_large: false };
        this.buf = "";
        this.pendingSeq = null;
        return;
      }
      if (this.buf.length - i > MAX_CONTRACT_BYTES + 1024) {
        this.last = { seq: at, text: null, too_large: true };
        this.buf = "";
        this.pendingSeq = null;
      } else {
        if (i > 0) this.buf = this.buf.slice(i);
        this.pendingSeq = at;
      }
      return;
    }
  }
}

function scanComplete(text: string, seq: number): Candidate | null {
  if (!text.includes(CONTRACT_MARKER)) return null;
  const s = new TextStream();
  s.feed(text, seq);
  s.finish(seq);
  return s.last;
}

/** Event types of the four agent stream formats; for these only the agent's own text is searched. */
const KNOWN_EVENT_TYPES = new Set([
  // Claude Code stream-json
  "system",
  "assistant",
  "user",
  "result",
  "stream_event",
  // OpenCode --format json
  "step_start",
  "step_finish",
  "text",
  "tool_use",
  "reasoning",
  "error",
  // Codex --json
  "thread.started",
  "turn.started",
  "turn.completed",
  "turn.failed",
  "item.started",
  "item.updated",
  "item.completed",
  // Gemini stream-json
  "init",
  "message",
  "tool_result",
]);

interface EventText {
  complete: string[];
  delta: string[];
}

/** The agent-authored text of one event. User turns and tool output are skipped: they may echo the prompt's example contract. */
function eventText(o: JsonObject): EventText {
  const out: EventText = { complete: [], delta: [] };
  const type = typeof o.type === "string" ? o.type : null;
  if (o.role === "user" || type === "user") return out;
  if (type === null || !KNOWN_EVENT_TYPES.has(type)) {
    walkStrings(o, out.complete, 0);
    return out;
  }
  const msg = o.message;
  if (type === "assistant" && isObject(msg) && Array.isArray(msg.content)) {
    for (const c of msg.content) if (isObject(c) && c.type === "text" && typeof c.text === "string") out.complete.push(c.text);
  } else if (type === "result" && typeof o.result === "string") {
    out.complete.push(o.result);
  } else if (type === "stream_event" && isObject(o.event) && isObject(o.event.delta) && typeof o.event.delta.text === "string") {
    out.delta.push(o.event.delta.text);
  } else if (type === "text" && isObject(o.part) && typeof o.part.text === "string") {
    out.complete.push(o.part.text);
  } else if (type.startsWith("item.") && isObject(o.item) && o.item.type === "agent_message" && typeof o.item.text === "string") {
    out.complete.push(o.item.text);
  } else if (type === "message" && o.role === "assistant" && typeof o.content === "string") {
    (o.delta === true ? out.delta : out.complete).push(o.content);
  }
  return out;
}

function walkStrings(v: unknown, out: string[], depth: number): void {
  if (depth > 32) return;
  if (typeof v === "string") out.push(v);
  else if (Array.isArray(v)) for (const x of v) walkStrings(x, out, depth + 1);
  else if (isObject(v)) {
    if (v.role === "user" || v.type === "user") return;
    for (const x of Object.values(v)) walkStrings(x, out, depth + 1);
  }
}

class LogScanner {
  private readonly plain = new TextStream();
  private readonly deltas = new TextStream();
  private best: Candidate | null = null;
  private seq = 0;

  /** A contract is being assembled: every line matters until it completes. */
  get busy(): boolean {
    return this.plain.pending || this.deltas.pending;
  }

  private keep(c: Candidate | null): void {
    if (c && (this.best === null || c.seq >= this.best.seq)) this.best = c;
  }

  line(buf: Buffer): void {
    const seq = ++this.seq;
    const hasMarker = buf.includes(MARKER_BUF);
    const maybeDelta = buf.includes(DELTA_BUF);
    if (!hasMarker && !maybeDelta && !this.plain.pending && !this.deltas.pending) return;
    const text = buf.toString("utf8");
    const o = text.trimStart().startsWith("{") ? parseObject(text) : null;
    // A pending plain-text contract may span lines that happen to parse as JSON (a finding per
    // line): those lines feed both readings, and the newest complete candidate wins.
    if (this.plain.pending || (hasMarker && !o)) {
      this.plain.feed(`${text}\n`, seq);
      this.keep(this.plain.last);
    }
    if (o) {
      const t = eventText(o);
      for (const s of t.complete) this.keep(scanComplete(s, seq));
      for (const s of t.delta) {
        this.deltas.feed(s, seq);
        this.keep(this.deltas.last);
      }
    }
  }

  finish(): ScanResult {
    this.plain.finish(this.seq);
    this.keep(this.plain.last);
    this.deltas.finish(this.seq);
    this.keep(this.deltas.last);
    const b = this.best;
    if (b === null) return { kind: "none" };
    if (b.too_large) return { kind: "too_large", bytes: MAX_CONTRACT_BYTES + 1 };
    return b.text === null || b.text === "" ? { kind: "none" } : { kind: "found", text: b.text };
  }
}

function parseObject(text: string): JsonObject | null {
  try {
    const v: unknown = JSON.parse(text);
    return isObject(v) ? v : null;
  } catch {
    return null;
  }
}

/** Scan a log file for the last contract marker; chunks of 64 KiB, lines capped. */
export async function scanLogForContract(logPath: string): Promise<ScanResult> {
  const scanner = new LogScanner();
  let parts: Buffer[] = [];
  let len = 0;
  let overflow = false;
  const append = (piece: Buffer): void => {
    if (overflow) return;
    if (len + piece.length > MAX_LINE_BYTES) {
      overflow = true;
      parts = [];
      len = 0;
    } else if (piece.length > 0) {
      parts.push(piece);
      len += piece.length;
    }
  };
  const endLine = (): void => {
    if (!overflow) scanner.line(parts.length === 1 && parts[0] ? parts[0] : Buffer.concat(parts, len));
    parts = [];
    len = 0;
    overflow = false;
  };
  const stream = createReadStream(logPath, { highWaterMark: 64 * 1024 });
  try {
    for await (const chunk of stream) {
      if (!Buffer.isBuffer(chunk)) continue;
      let start = 0;
      if (len > 0 || overflow) {
        const nl = chunk.indexOf(10);
        append(chunk.subarray(0, nl < 0 ? chunk.length : nl));
        if (nl < 0) continue;
        endLine();
        start = nl + 1;
      }
      const rest = chunk.subarray(start);
      // Fast path: whole lines that cannot matter are skipped without being split.
      if (!scanner.busy && !rest.includes(MARKER_BUF) && !rest.includes(DELTA_BUF)) {
        const last = rest.lastIndexOf(10);
        append(last < 0 ? rest : rest.subarray(last + 1));
        continue;
      }
      let at = 0;
      for (;;) {
        const nl = rest.indexOf(10, at);
        append(rest.subarray(at, nl < 0 ? rest.length : nl));
        if (nl < 0) break;
        endLine();
        at = nl + 1;
      }
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { kind: "none" };
    throw e;
  }
  if (!overflow && len > 0) endLine();
  return scanner.finish();
}

/** The same scan over text already in memory (tests, and small outputs such as a contract file's neighbour). */
export function scanTextForContract(text: string): ScanResult {
  const scanner = new LogScanner();
  for (const line of text.split("\n")) scanner.line(Buffer.from(line));
  return scanner.finish();
}
