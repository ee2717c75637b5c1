import type { ItemState, WaveState } from "../core/state.js";
import { ITEM_STATUSES, isActiveItem, isTerminalItem } from "../core/status.js";
import { toMs } from "../core/time.js";
import { itemSpend, waveSpend } from "../core/budget.js";
import { paint, paintStatus } from "./colour.js";

// The live view of a wave as plain text: a summary line, then one row per item. Pure (the clock
// is an argument) so the tests pin every figure, and cheap on 10,000-item waves: one pass over the
// items picks the rows to show, and only those are formatted.

export interface RenderOptions {
  /** Terminal columns: no line of the output is longer. */
  width: number;
  /** Most item rows to show; active items come first (default 30). */
  maxRows?: number;
  /** ANSI colours for the status column (decided by the caller: TTY, NO_COLOR, FORCE_COLOR). */
  colour?: boolean;
}

export const DEFAULT_MAX_ROWS = 30;

const HEADERS = ["ITEM", "STATUS", "PHASE", "ATT", "PROVIDER", "ELAPSED", "SPEND", "REASON"] as const;
/** Narrowest a column may get before whole lines are cut instead. */
const MIN_WIDTH = [8, 7, 5, 3, 6, 7, 5, 8] as const;
/** Which columns give up width first when the terminal is narrow: reason, item, provider, status, phase. */
const SHRINK_ORDER = [7, 0, 4, 1, 2] as const;
const GAP = "  ";

/** `45s`, `3m05s`, `1h02m`, `2d03h`: short enough for a column, exact enough to watch. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${pad2(s % 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${pad2(m % 60)}m`;
  return `${Math.floor(h / 24)}d${pad2(h % 24)}h`;
}

const pad2 = (n: number): string => String(n).padStart(2, "0");

/** `-`, `830`, `6.3k`, `1.2M` tokens, then the cost when a CLI reported one: `6.3k $0.02`. */
export function formatSpend(x: { tokens: number; usd: number }): string {
  if (x.tokens <= 0 && x.usd <= 0) return "-";
  const t = x.tokens < 1000 ? String(x.tokens) : x.tokens < 1e6 ? `${(x.tokens / 1e3).toFixed(1)}k` : `${(x.tokens / 1e6).toFixed(1)}M`;
  return x.usd > 0 ? `${t} $${x.usd < 0.01 ? x.usd.toFixed(4) : x.usd.toFixed(2)}` : t;
}

/** Cut to `width` columns, marking the cut with an ellipsis. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return "";
  if (text.length <= width) return text;
  return width === 1 ? "…" : `${text.slice(0, width - 1)}…`;
}

/** Wall time the wave has run: to its end when it has one, else to now (paused and failed waves stop at their last event). */
export function waveElapsedMs(s: WaveState, nowMs: number): number | null {
  if (s.started_at === null) return null;
  const end = s.completed_at ?? (s.status === "running" || s.status === "pending" ? null : s.updated_at);
  return Math.max(0, (end === null ? nowMs : toMs(end)) - toMs(s.started_at));
}

/**
 * Remaining time: mean duration of the items that finished (first dispatch to settle) times the
 * rounds of `max_parallel` the open items still need. Null when it cannot be known yet, or the
 * wave is not running.
 */
export function estimateRemainingMs(s: WaveState): number | null {
  if (s.status !== "running") return null;
  let sum = 0;
  let finished = 0;
  let open = 0;
  for (const it of s.items) {
    if (!isTerminalItem(it.status)) {
      open += 1;
      continue;
    }
    // Cancelled items were cut short and settled-without-dispatch ones never ran: neither says how long an item takes.
    if (it.status === "cancelled" || it.started_at === null || it.completed_at === null) continue;
    sum += Math.max(0, toMs(it.completed_at) - toMs(it.started_at));
    finished += 1;
  }
  if (finished === 0 || open === 0) return null;
  const parallel = Math.max(1, s.policy.max_parallel);
  return (sum / finished) * Math.ceil(open / parallel);
}

/**
 * `wave w running (wave_running) | elapsed 3m05s | ETA 2m04s | 11 items: 4 pending, 2 implementing, 5 approved | spend 63.2k $0.41`
 * (the spend, tokens and cost the CLIs reported, once there is any).
 */
export function renderSummaryLine(s: WaveState, nowMs: number): string {
  const counts = ITEM_STATUSES.filter((st) => s.stats[st] > 0).map((st) => `${s.stats[st]} ${st}`);
  const elapsed = waveElapsedMs(s, nowMs);
  const eta = estimateRemainingMs(s);
  const spend = formatSpend(waveSpend(s));
  // Times before counts: on a narrow terminal the cut takes the tail, and the counts are in the table too.
  return [
    `wave ${s.wave_id} ${s.status} (${s.reason_code})`,
    `elapsed ${elapsed === null ? "-" : formatDuration(elapsed)}`,
    `ETA ${eta === null ? "-" : formatDuration(eta)}`,
    `${s.stats.total} items${counts.length > 0 ? `: ${counts.join(", ")}` : ""}`,
    ...(spend === "-" ? [] : [`spend ${spend}`]),
  ].join(" | ");
}

/** The item's time in its current run (active) or in the wave (terminal); null when there is none. */
export function itemElapsedMs(it: ItemState, nowMs: number): number | null {
  if (isTerminalItem(it.status)) {
    return it.started_at !== null && it.completed_at !== null ? Math.max(0, toMs(it.completed_at) - toMs(it.started_at)) : null;
  }
  if (!isActiveItem(it.status)) return null;
  const last = it.history[it.history.length - 1];
  if (!last) return null;
  // A review waiting for a free reviewer has no run yet: count from the end of the implement run.
  const since = last.completed_at ?? last.dispatched_at;
  return Math.max(0, nowMs - toMs(since));
}

/** The first dependency of a pending item that is not approved yet, if any. */
function waitingOn(it: ItemState, approved: ReadonlySet<string>): string | null {
  if (it.status !== "pending" && it.status !== "revision_required") return null;
  return it.depends_on.find((d) => !approved.has(d)) ?? null;
}

function itemCells(it: ItemState, nowMs: number, approved: ReadonlySet<string>): string[] {
  const elapsed = itemElapsedMs(it, nowMs);
  const waiting = waitingOn(it, approved);
  return [
    it.beads_id,
    it.status,
    it.phase ?? "-",
    it.attempt === 0 ? "-" : String(it.attempt),
    it.provider ?? "-",
    elapsed === null ? "-" : formatDuration(elapsed),
    formatSpend(itemSpend(it)),
    waiting === null ? it.reason_code : `waiting on ${waiting}`,
  ];
}

/** When was the item last touched: the last thing that happened to it, or null before its first dispatch. */
function lastActivity(it: ItemState): string | null {
  if (it.completed_at !== null) return it.completed_at;
  const last = it.history[it.history.length - 1];
  return last ? (last.completed_at ?? last.dispatched_at) : null;
}

/**
 * The rows to show, at most `max`: the whole wave in its own order when it fits; otherwise the
 * active items, then the most recently touched others, then untouched ones in wave order.
 */
export function pickRows(items: readonly ItemState[], max: number): { rows: ItemState[]; hidden: number } {
  const cap = Math.max(0, max);
  if (items.length <= cap) return { rows: items.slice(), hidden: 0 };
  const active: ItemState[] = [];
  // Top-k by recency, kept sorted newest first; k is small, so insertion beats sorting 10,000 items.
  const recent: { at: string; it: ItemState }[] = [];
  const untouched: ItemState[] = [];
  for (const it of items) {
    if (isActiveItem(it.status)) {
      if (active.length < cap) active.push(it);
      continue;
    }
    const at = lastActivity(it);
    if (at === null) {
      if (untouched.length < cap) untouched.push(it);
      continue;
    }
    if (recent.length >= cap && at <= (recent[recent.length - 1]?.at ?? "")) continue;
    let i = recent.length;
    while (i > 0 && (recent[i - 1]?.at ?? "") < at) i -= 1;
    recent.splice(i, 0, { at, it });
    if (recent.length > cap) recent.pop();
  }
  const rows = [...active, ...recent.map((r) => r.it), ...untouched].slice(0, cap);
  return { rows, hidden: items.length - rows.length };
}

/** Column widths that fit `width`, shrinking the least important columns first. */
function fitColumns(natural: number[], width: number): number[] {
  const w = natural.slice();
  const total = (): number => w.reduce((a, b) => a + b, 0) + GAP.length * (w.length - 1);
  for (const col of SHRINK_ORDER) {
    const over = total() - width;
    if (over <= 0) break;
    const cur = w[col] ?? 0;
    w[col] = Math.max(Math.min(cur, MIN_WIDTH[col]), cur - over);
  }
  return w;
}

/** Summary line, header and item rows; every line at most `opts.width` columns. */
export function renderWaveTable(state: WaveState, nowMs: number, opts: RenderOptions): string {
  const width = Math.max(1, Math.floor(opts.width));
  const { rows, hidden } = pickRows(state.items, opts.maxRows ?? DEFAULT_MAX_ROWS);
  const approved = new Set<string>();
  for (const it of state.items) if (it.status === "approved") approved.add(it.beads_id);
  const cells = rows.map((it) => itemCells(it, nowMs, approved));
  const natural = HEADERS.map((h, c) => cells.reduce((m, r) => Math.max(m, (r[c] ?? "").length), h.length));
  const widths = fitColumns(natural, width);
  const fitted = (r: readonly string[]): string[] => r.map((v, c) => truncate(v, widths[c] ?? 0).padEnd(widths[c] ?? 0));
  const line = (r: readonly string[]): string => truncate(fitted(r).join(GAP).trimEnd(), width);
  const itemLine = (r: readonly string[], it: ItemState | undefined): string => {
    const plain = line(r);
    if (!opts.colour || it === undefined) return plain;
    const f = fitted(r);
    // Colour only a line that needed no final cut: escape codes must not be counted or cut.
    if (f.join(GAP).trimEnd().length > width) return plain;
    f[1] = paintStatus(it.status, f[1] ?? "");
    return f.join(GAP).trimEnd();
  };
  const header = opts.colour ? paint.bold(line(HEADERS)) : line(HEADERS);
  const out = [truncate(renderSummaryLine(state, nowMs), width), header, ...cells.map((r, i) => itemLine(r, rows[i]))];
  if (hidden > 0) out.push(truncate(`… and ${hidden} more`, width));
  return out.join("\n");
}

/** The closing lines of a finished run or watch: the outcome in one line, then where the artifacts are. */
export function renderEndLines(s: WaveState, nowMs: number, endKind: string): string[] {
  return [renderEndLine(s, endKind, waveElapsedMs(s, nowMs)), ...(s.error ? [`detail: ${s.error.replace(/\s*\n\s*/g, " ")}`] : []), `artifacts: ${s.wave_dir}`];
}

/** The outcome of a run in one line: every output mode ends with it (elapsed: null leaves it out). */
export function renderEndLine(s: WaveState, endKind: string, elapsedMs: number | null): string {
  const st = s.stats;
  return `wave ${s.wave_id} ${s.status} (${s.reason_code}) [${endKind}]: ${st.approved} approved, ${st.blocked} blocked, ${st.failed} failed, ${st.cancelled} cancelled of ${st.total}${elapsedMs === null ? "" : ` in ${formatDuration(elapsedMs)}`}; next action: ${s.next_action}`;
}
