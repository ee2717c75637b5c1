import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { readTail } from "./fs-util.js";

// What an agent's output says while it runs and after it ends: rate-limit retries, token usage and
// cost, and the CLI's own last error line. Pure parsers over one line at a time (Claude Code
// stream-json, Codex --json, OpenCode --format json, Gemini stream-json and the plain-text lines
// the CLIs print around them), fed by the runner as the log grows. The shapes were captured from
// the real CLIs against mock model servers (test/fixtures/mock-models/captured) and are
// table-tested in test/real-agents/streams.test.ts.

export const LOG_TAIL_BYTES = 64 * 1024;

const QUOTA = [/\b429\b/, /rate[ _-]?limit/i, /\bquota\b/i, /capacity[ _-]?exhausted/i, /RESOURCE_EXHAUSTED/, /usage limit/i, /too many requests/i];

export const mentionsQuota = (text: string): boolean => QUOTA.some((re) => re.test(text));

// A CLI's own local state briefly busy: OpenCode's SQLite store, written by every run, answers
// "database is locked" when two OpenCode runs write it at once (REFERENCE §6: about 1 run in 8 on
// a fresh store; CI saw it on a warm one with two agents starting together). When its 5 s busy
// wait runs out OpenCode prints the statement instead ("Failed query: insert into "project" …",
// measured with the store held by another writer). Only the CLI's plain-text lines count: the
// JSON events also carry tool output, where an agent's own sqlite or `bd` call may say the same
// words about the item's work.
const TRANSIENT = [/\bdatabase is locked\b/i, /\bSQLITE_BUSY\b/, /^Failed query: /];
// The CLIs colour their error lines; the escapes are dropped before a line is matched.
const ANSI = /\x1b\[[0-9;]*m/g;

const isTransientLine = (t: string): boolean => !t.startsWith("{") && TRANSIENT.some((re) => re.test(t));

export const mentionsTransient = (text: string): boolean => text.split("\n").some((line) => isTransientLine(line.replace(ANSI, "").trim()));

/** What a failed job's log tail says about why it failed, read once. */
export function scanLogTail(logPath: string): { quota: boolean; transient: boolean } {
  const tail = readTail(logPath, LOG_TAIL_BYTES);
  return { quota: mentionsQuota(tail), transient: mentionsTransient(tail) };
}

/** Token usage and cost of one attempt, normalised across CLIs; null where the CLI does not say. */
export interface Usage {
  /** Input tokens not served from a cache (cache writes included). */
  input_tokens: number | null;
  output_tokens: number | null;
  cache_read_tokens: number | null;
  cost_usd: number | null;
}

export const NO_USAGE: Usage = { input_tokens: null, output_tokens: null, cache_read_tokens: null, cost_usd: null };

export type StreamSignal =
  /** The CLI is retrying a call the provider refused for rate or quota. */
  | { kind: "quota_retry"; detail: string }
  /**
   * Usage reported by the stream. `scope: "total"` replaces what was summed so far (Claude's and
   * Gemini's final result); `"increment"` adds to it (a Codex turn, an OpenCode step); `"call"` is
   * one model call, keyed, whose latest report replaces its earlier ones (Claude's live messages);
   * `"running"` is the session's total so far, used until the stream itself says more (Codex's
   * rollout `token_count` events, written after each model call while its one turn runs).
   */
  | { kind: "usage"; usage: Usage; scope: "total" | "increment" | "call" | "running"; key?: string }
  /** A line in which the CLI states an error, as the CLI words it. */
  | { kind: "error"; message: string }
  /** Codex named its session (`thread.started`): its rollout file carries usage per model call. */
  | { kind: "codex_thread"; thread_id: string };

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === "string" && v.trim() !== "" ? v : null);
const sub = (a: number | null, b: number | null): number | null => (a === null ? null : Math.max(0, a - (b ?? 0)));
const add = (a: number | null, b: number | null): number | null => (a === null && b === null ? null : (a ?? 0) + (b ?? 0));

/** Keeps an error line short enough for an outcome, a report or a terminal. */
export const clipError = (s: string, max = 500): string => {
  const one = s.replace(/\s+/g, " ").trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
};

function claude(o: Record<string, unknown>): StreamSignal[] {
  if (o.type === "system" && o.subtype === "api_retry") {
    const status = num(o.error_status);
    const err = str(o.error) ?? "";
    if (status === 429 || /rate_limit|quota/i.test(err))
      return [{ kind: "quota_retry", detail: `api_retry ${(o.attempt as number | undefined) ?? "?"}: ${status ?? ""} ${err}`.trim() }];
    return [];
  }
  if (o.type === "assistant" && isObj(o.message) && isObj(o.message.usage)) {
    const u = o.message.usage;
    const key = str(o.message.id) ?? undefined;
    return [
      {
        kind: "usage",
        scope: "call",
        ...(key !== undefined ? { key } : {}),
        usage: {
          input_tokens: add(num(u.input_tokens), num(u.cache_creation_input_tokens)),
          output_tokens: num(u.output_tokens),
          cache_read_tokens: num(u.cache_read_input_tokens),
          cost_usd: null,
        },
      },
    ];
  }
  if (o.type === "result") {
    const out: StreamSignal[] = [];
    if (isObj(o.usage)) {
      const u = o.usage;
      out.push({
        kind: "usage",
        scope: "total",
        usage: {
          input_tokens: add(num(u.input_tokens), num(u.cache_creation_input_tokens)),
          output_tokens: num(u.output_tokens),
          cache_read_tokens: num(u.cache_read_input_tokens),
          cost_usd: num(o.total_cost_usd),
        },
      });
    }
    if (o.is_error === true || (typeof o.subtype === "string" && o.subtype !== "success")) {
      const status = num(o.api_error_status);
      out.push({ kind: "error", message: clipError(`${str(o.result) ?? String(o.subtype)}${status !== null ? ` (API status ${status})` : ""}`) });
    }
    return out;
  }
  return [];
}

/** Codex's token counts (turn.completed `usage`, rollout `total_token_usage`), normalised. */
const codexUsage = (u: Record<string, unknown>): Usage => {
  const cached = num(u.cached_input_tokens);
  return { input_tokens: sub(num(u.input_tokens), cached), output_tokens: num(u.output_tokens), cache_read_tokens: cached, cost_usd: null };
};

/**
 * A line of Codex's session rollout file (`$CODEX_HOME/sessions/…/rollout-…-<thread>.jsonl`):
 * after every model call it records `{"type":"event_msg","payload":{"type":"token_count","info":
 * {"total_token_usage":{…}}}}`. Its `--json` stream reports usage only as the turn ends.
 */
function codexRollout(o: Record<string, unknown>): StreamSignal[] {
  const p = o.payload;
  if (!isObj(p) || p.type !== "token_count" || !isObj(p.info) || !isObj(p.info.total_token_usage)) return [];
  return [{ kind: "usage", scope: "running", usage: codexUsage(p.info.total_token_usage) }];
}

function codex(o: Record<string, unknown>): StreamSignal[] {
  if (o.type === "thread.started") {
    const id = str(o.thread_id);
    return id !== null && /^[A-Za-z0-9-]+$/.test(id) ? [{ kind: "codex_thread", thread_id: id }] : [];
  }
  if (o.type === "turn.completed" && isObj(o.usage)) return [{ kind: "usage", scope: "increment", usage: codexUsage(o.usage) }];
  if (o.type === "error") {
    const m = str(o.message);
    if (m === null) return [];
    // "Reconnecting... 2/5 (exceeded retry limit, last status: 429 Too Many Requests)"
    if (/^Reconnecting\b/i.test(m)) return mentionsQuota(m) ? [{ kind: "quota_retry", detail: clipError(m) }] : [];
    return [{ kind: "error", message: clipError(m) }];
  }
  if (o.type === "turn.failed" && isObj(o.error)) {
    const m = str(o.error.message);
    return m === null ? [] : [{ kind: "error", message: clipError(m) }];
  }
  return [];
}

function opencode(o: Record<string, unknown>): StreamSignal[] {
  if (o.type === "step_finish" && isObj(o.part) && isObj(o.part.tokens)) {
    const t = o.part.tokens;
    const cache = isObj(t.cache) ? t.cache : {};
    return [
      {
        kind: "usage",
        scope: "increment",
        usage: {
          input_tokens: add(num(t.input), num(cache.write)),
          output_tokens: add(num(t.output), num(t.reasoning)),
          cache_read_tokens: num(cache.read),
          cost_usd: num(o.part.cost),
        },
      },
    ];
  }
  if (o.type === "error" && isObj(o.error)) {
    const e = o.error;
    const data = isObj(e.data) ? e.data : {};
    const status = num(data.statusCode);
    const message = clipError(`${str(e.name) ?? "error"}: ${str(data.message) ?? ""}${status !== null ? ` (status ${status})` : ""}`);
    const out: StreamSignal[] = [{ kind: "error", message }];
    if (status === 429 || mentionsQuota(str(data.message) ?? "")) out.unshift({ kind: "quota_retry", detail: message });
    return out;
  }
  return [];
}

function gemini(o: Record<string, unknown>): StreamSignal[] {
  if (o.type === "result") {
    const out: StreamSignal[] = [];
    if (isObj(o.stats)) {
      const s = o.stats;
      const cached = num(s.cached);
      const input = num(s.input) ?? sub(num(s.input_tokens), cached);
      out.push({
        kind: "usage",
        scope: "total",
        usage: { input_tokens: input, output_tokens: num(s.output_tokens), cache_read_tokens: cached, cost_usd: null },
      });
    }
    if (o.status === "error") {
      const e = isObj(o.error) ? (str(o.error.message) ?? JSON.stringify(o.error)) : "error";
      out.push({ kind: "error", message: clipError(e) });
    }
    return out;
  }
  return [];
}

/** Plain-text lines: Gemini's retry lines, and the last error a CLI prints outside its JSON. */
function plain(line: string): StreamSignal[] {
  const t = line.replace(ANSI, "").trim();
  if (t === "" || /^at\s/.test(t) || t.startsWith("}")) return [];
  // Gemini CLI: "Attempt 2 failed with status 429. Retrying with backoff... _ApiError: {…}"
  const attempt = /^Attempt \d+ failed with status (\d+)/.exec(t);
  if (attempt !== null) {
    const out: StreamSignal[] = [{ kind: "error", message: clipError(t) }];
    if (attempt[1] === "429" || mentionsQuota(t)) out.unshift({ kind: "quota_retry", detail: clipError(t, 200) });
    return out;
  }
  if (/^(error|fatal|Error\b|\w*Error:|API Error)/i.test(t) || /\b(exceeded retry limit|failed with status)\b/i.test(t) || isTransientLine(t))
    return [{ kind: "error", message: clipError(t) }];
  return [];
}

/** Every signal one line of agent output carries (none for most lines). */
export function parseStreamLine(line: string): StreamSignal[] {
  const t = line.trim();
  if (!t.startsWith("{")) return plain(t);
  let o: unknown;
  try {
    o = JSON.parse(t);
  } catch {
    return plain(t);
  }
  if (!isObj(o) || typeof o.type !== "string") return [];
  // The four formats do not share event types, except "error" and "result", told apart by shape.
  if (o.type === "result") return "stats" in o ? gemini(o) : claude(o);
  // OpenCode's error events carry an `error` object; Codex's (and any other) a `message` string.
  if (o.type === "error") return isObj(o.error) ? opencode(o) : codex(o);
  if (o.type === "system" || o.type === "assistant") return claude(o);
  if (o.type.startsWith("turn.") || o.type === "thread.started") return codex(o);
  if (o.type === "event_msg") return codexRollout(o);
  if (o.type === "step_finish") return opencode(o);
  return [];
}

/** Folds a stream's signals: retries in a row, the usage so far, the CLI's last error line. */
export class StreamSignals {
  quota_retries = 0;
  last_error: string | null = null;
  /** The Codex session this stream belongs to, once `thread.started` named it. */
  codex_thread: string | null = null;
  private total: Usage | null = null;
  private running: Usage | null = null;
  private increments: Usage | null = null;
  private readonly calls = new Map<string, Usage>();
  private anon = 0;

  feed(line: string): StreamSignal[] {
    const signals = parseStreamLine(line);
    for (const s of signals) {
      if (s.kind === "quota_retry") this.quota_retries++;
      else if (s.kind === "error") this.last_error = s.message;
      else if (s.kind === "codex_thread") this.codex_thread = s.thread_id;
      else if (s.scope === "total") this.total = s.usage;
      else if (s.scope === "running") this.running = s.usage;
      else if (s.scope === "increment") this.increments = this.increments === null ? s.usage : sumUsage(this.increments, s.usage);
      else this.calls.set(s.key ?? `anon-${++this.anon}`, s.usage);
    }
    return signals;
  }

  /**
   * The usage so far: a final total when the CLI gave one, else the sum of what it reported, else
   * the running total of a side file (Codex's rollout, while its turn has not ended).
   */
  get usage(): Usage {
    if (this.total !== null) return this.total;
    let u = this.increments;
    for (const c of this.calls.values()) u = u === null ? c : sumUsage(u, c);
    return u ?? this.running ?? NO_USAGE;
  }
}

export function sumUsage(a: Usage, b: Usage): Usage {
  return {
    input_tokens: add(a.input_tokens, b.input_tokens),
    output_tokens: add(a.output_tokens, b.output_tokens),
    cache_read_tokens: add(a.cache_read_tokens, b.cache_read_tokens),
    cost_usd: add(a.cost_usd, b.cost_usd),
  };
}

/** Tokens a budget counts: input, output and cache reads alike (null when the CLI said nothing). */
export const usageTokens = (u: Usage): number | null =>
  u.input_tokens === null && u.output_tokens === null && u.cache_read_tokens === null
    ? null
    : (u.input_tokens ?? 0) + (u.output_tokens ?? 0) + (u.cache_read_tokens ?? 0);

/** Parse a whole text (a finished log, or a test table). */
export function signalsOf(text: string): StreamSignals {
  const s = new StreamSignals();
  for (const line of text.split("\n")) s.feed(line);
  return s;
}

/**
 * Follows a growing log: each `poll` reads what was appended since the last one (at most
 * `maxBytes`, so a flood is read over several polls) and feeds complete lines to a StreamSignals.
 * A line longer than MAX_SIGNAL_LINE_BYTES is dropped: no signal line is that long, and a model's
 * giant output must not be held in memory.
 */
export const MAX_SIGNAL_LINE_BYTES = 256 * 1024;

export class LogFollower {
  private offset = 0;
  private carry = "";
  private dropping = false;

  /** `signals` may be shared: a side file (Codex's rollout) feeds the same fold as the log. */
  constructor(
    private readonly logPath: string,
    readonly signals: StreamSignals = new StreamSignals(),
  ) {}

  poll(maxBytes = 4 * 1024 * 1024): StreamSignal[] {
    let fd: number;
    try {
      fd = openSync(this.logPath, "r");
    } catch {
      return [];
    }
    const out: StreamSignal[] = [];
    try {
      const size = fstatSync(fd).size;
      if (size < this.offset) {
        // Truncated or replaced: start over.
        this.offset = 0;
        this.carry = "";
      }
      const want = Math.min(size - this.offset, maxBytes);
      if (want <= 0) return out;
      const buf = Buffer.alloc(want);
      const n = readSync(fd, buf, 0, want, this.offset);
      this.offset += n;
      const lines = (this.carry + buf.subarray(0, n).toString("utf8")).split("\n");
      this.carry = lines.pop() ?? "";
      for (const line of lines) {
        if (this.dropping) {
          this.dropping = false;
          continue;
        }
        out.push(...this.signals.feed(line));
      }
      if (this.carry.length > MAX_SIGNAL_LINE_BYTES) {
        this.carry = "";
        this.dropping = true;
      }
    } finally {
      closeSync(fd);
    }
    return out;
  }

  /** The last line, even without its newline: a CLI's final error is often unterminated. */
  finish(): StreamSignal[] {
    const out = this.poll();
    if (this.carry !== "" && !this.dropping) out.push(...this.signals.feed(this.carry));
    this.carry = "";
    return out;
  }
}
