import type { WaveEvent } from "../core/events.js";
import { WaveReason, waveNextAction, NextAction } from "../core/reasons.js";
import type { ItemState, WaveState } from "../core/state.js";
import { itemSpend, waveSpend } from "../core/budget.js";
import { secondsBetween } from "../core/time.js";

// Read models for status, check and report: pure functions of a loaded wave and what is known
// about its controller. The CLI prints them; tests assert them.

export interface ControllerView {
  pid: number | null;
  host: string | null;
  /** True for a frozen controller too: it is alive, and nobody may take the wave over. */
  alive: boolean;
  /** Another host's controller with a stale heartbeat that still holds the wave's OS lock. */
  frozen: boolean;
  heartbeat_at: string | null;
}

/**
 * The wave as an operator must read it: a running wave with a dead controller is not running, and
 * one whose controller is frozen cannot be resumed (resume refuses while the OS lock is held).
 */
export function effectiveReason(s: WaveState, c: ControllerView): { reason_code: WaveReason; next_action: NextAction } {
  const activeStatus = s.status === "running" || s.status === "pending";
  if (activeStatus && c.frozen && s.started_at !== null) {
    return { reason_code: WaveReason.controller_frozen, next_action: NextAction.wake_or_stop_frozen_controller };
  }
  if (activeStatus && !c.alive && s.started_at !== null) {
    return { reason_code: WaveReason.controller_dead, next_action: NextAction.run_dx_batch_resume };
  }
  return { reason_code: s.reason_code, next_action: waveNextAction(s.status, s.reason_code) };
}

export function itemView(it: ItemState) {
  return {
    beads_id: it.beads_id,
    title: it.title,
    status: it.status,
    phase: it.phase,
    attempt: it.attempt,
    provider: it.provider,
    run_instance: it.run_instance,
    lease_key: it.lease_key,
    started_at: it.started_at,
    completed_at: it.completed_at,
    verdict: it.verdict,
    outcome_path: it.outcome_path,
    error: it.error,
    reason_code: it.reason_code,
    next_action: it.next_action,
    worktree: it.worktree,
    depends_on: it.depends_on,
    tracker_error: it.tracker_error,
    usage: spendView(itemSpend(it)),
  };
}

/** Tokens and dollars as the CLIs reported them (cost null when none of them said). */
export const spendView = (x: { tokens: number; usd: number }) => ({ tokens: x.tokens, cost_usd: x.usd > 0 ? Math.round(x.usd * 1e6) / 1e6 : null });

export function statusView(s: WaveState, c: ControllerView) {
  const r = effectiveReason(s, c);
  return {
    wave_id: s.wave_id,
    status: s.status,
    reason_code: r.reason_code,
    next_action: r.next_action,
    error: s.error,
    created_at: s.created_at,
    updated_at: s.updated_at,
    started_at: s.started_at,
    completed_at: s.completed_at,
    config: s.config,
    preflight: s.preflight,
    stats: s.stats,
    usage: spendView(waveSpend(s)),
    controller: c,
    items: s.items.map(itemView),
  };
}

export function checkView(s: WaveState, c: ControllerView) {
  const r = effectiveReason(s, c);
  return { wave_id: s.wave_id, state: s.status, reason_code: r.reason_code, next_action: r.next_action, stats: s.stats, controller: c };
}

/** Exit code of `check` (SPEC §2). */
export function checkExitCode(s: WaveState, c: ControllerView): number {
  const r = effectiveReason(s, c);
  if (s.status === "paused" || r.reason_code === WaveReason.controller_dead || r.reason_code === WaveReason.controller_frozen) return 2;
  if (s.status === "failed" || s.status === "cancelled") return 3;
  return 0;
}

/** What `status --json`, `report --format json` and `status --watch --json` print for a missing wave. */
export const missingWaveDoc = (waveId: string) => ({
  wave_id: waveId,
  status: "missing",
  reason_code: WaveReason.wave_not_found,
  next_action: NextAction.start_or_resume_wave,
});

export const notFoundCheck = (waveId: string | null) => ({
  wave_id: waveId,
  state: "missing",
  reason_code: WaveReason.wave_not_found,
  next_action: NextAction.start_or_resume_wave,
  stats: null,
  controller: null,
});

/** `attemptErrors`: run_instance -> why that attempt failed (LoadedWave.attemptErrors). */
/** What the report adds from outside the ledger: each worktree's branch and head right now. */
export type WorktreeHeads = Readonly<Record<string, { branch: string | null; head: string | null }>>;

export function reportView(
  s: WaveState,
  waveEvents: readonly WaveEvent[],
  attemptErrors: Readonly<Record<string, string>> = {},
  attemptLogs: Readonly<Record<string, string>> = {},
  heads: WorktreeHeads = {},
) {
  return {
    wave_id: s.wave_id,
    status: s.status,
    reason_code: s.reason_code,
    next_action: waveNextAction(s.status, s.reason_code),
    created_at: s.created_at,
    started_at: s.started_at,
    completed_at: s.completed_at,
    duration_sec: s.started_at ? secondsBetween(s.started_at, s.completed_at ?? s.updated_at) : null,
    stats: s.stats,
    usage: spendView(waveSpend(s)),
    preflight: s.preflight,
    items: s.items.map((it) => ({
      beads_id: it.beads_id,
      title: it.title,
      status: it.status,
      reason_code: it.reason_code,
      next_action: it.next_action,
      error: it.error,
      worktree: it.worktree,
      branch: heads[it.beads_id]?.branch ?? null,
      head_commit: heads[it.beads_id]?.head ?? null,
      delivery: it.delivery ?? null,
      usage: spendView(itemSpend(it)),
      attempts: it.history.map((h) => ({
        attempt: h.attempt,
        phase: h.phase,
        provider: h.provider,
        run_instance: h.run_instance,
        state: h.state,
        reason_code: h.reason_code,
        error: attemptErrors[h.run_instance] ?? null,
        verdict: h.verdict,
        findings: h.findings,
        summary: h.summary,
        charged: h.charged,
        quota: h.quota,
        skipped: h.skipped,
        dispatched_at: h.dispatched_at,
        started_at: h.started_at,
        completed_at: h.completed_at,
        duration_sec: h.started_at && h.completed_at ? secondsBetween(h.started_at, h.completed_at) : null,
        outcome_path: h.outcome_path,
        log_path: h.log_path ?? attemptLogs[h.run_instance] ?? null,
        range: h.range ?? null,
        auto_commit: h.auto_commit ?? null,
        usage: h.usage ?? null,
      })),
    })),
    timeline: waveEvents
      .filter((e) => !("item_id" in e))
      .map((e) => ({ seq: e.seq, at: e.at, event: e.event, reason_code: "reason_code" in e ? e.reason_code : null })),
  };
}

export type Report = ReturnType<typeof reportView>;

const spendText = (u: { tokens: number; cost_usd: number | null }): string => `${u.tokens} tokens${u.cost_usd === null ? "" : `, $${u.cost_usd}`}`;

const cell = (v: string | number | null | undefined): string =>
  String(v ?? "")
    .replace(/\|/g, "\\|")
    .replace(/\n/g, " ");

export function reportMarkdown(r: Report): string {
  const lines: string[] = [];
  lines.push(`# dx-batch wave ${r.wave_id}`, "");
  lines.push(`- status: **${r.status}** (${r.reason_code}); next action: \`${r.next_action}\``);
  lines.push(
    `- created ${r.created_at}; started ${r.started_at ?? "-"}; completed ${r.completed_at ?? "-"}${r.duration_sec === null ? "" : ` (${r.duration_sec.toFixed(1)} s)`}`,
  );
  const st = r.stats;
  lines.push(
    `- items: ${st.total} total, ${st.approved} approved, ${st.blocked} blocked, ${st.failed} failed, ${st.cancelled} cancelled, ${st.pending + st.implementing + st.reviewing + st.revision_required} open`,
    `- usage: ${spendText(r.usage)}`,
    "",
  );
  lines.push("| item | status | reason | attempts | providers | last verdict | usage |", "|---|---|---|---|---|---|---|");
  for (const it of r.items) {
    const impl = it.attempts.filter((a) => a.phase === "implement");
    const verdicts = it.attempts.filter((a) => a.verdict !== null).map((a) => a.verdict);
    lines.push(
      `| ${cell(it.beads_id)} | ${cell(it.status)} | ${cell(it.reason_code)} | ${impl.length} | ${cell([...new Set(it.attempts.map((a) => a.provider))].join(", "))} | ${cell(verdicts[verdicts.length - 1] ?? "-")} | ${cell(spendText(it.usage))} |`,
    );
  }
  for (const it of r.items) {
    if (it.attempts.length === 0 && !it.error) continue;
    lines.push("", `## ${it.beads_id}: ${it.title}`, "");
    if (it.error) lines.push(`${it.status} (${it.reason_code}): ${it.error}`, "");
    if (it.worktree) lines.push(`- worktree: \`${it.worktree}\``, `- branch: \`${it.branch ?? "-"}\` at \`${it.head_commit ?? "-"}\``);
    if (it.delivery) {
      const d = it.delivery;
      lines.push(
        `- delivery: ${d.reason_code}${d.pr_url ? ` ${d.pr_url}` : d.pushed ? ` (${d.remote}/${d.branch})` : ""}${d.error ? `: ${cell(d.error)}` : ""}`,
      );
    }
    if (it.worktree || it.delivery) lines.push("");
    for (const a of it.attempts) {
      const dur = a.duration_sec === null ? "" : `, ${a.duration_sec.toFixed(1)} s`;
      lines.push(
        `- attempt ${a.attempt} ${a.phase} on ${a.provider}: ${a.state ?? "-"} → ${a.reason_code ?? "-"}${a.verdict ? ` (${a.verdict})` : ""}${dur}${a.charged ? "" : ` [not counted: ${a.reason_code ?? "quota"}]`}`,
      );
      if (a.error) lines.push(`  - error: ${cell(a.error)}`);
      if (a.usage && (a.usage.input_tokens !== null || a.usage.output_tokens !== null))
        lines.push(
          `  - usage: ${a.usage.input_tokens ?? "?"} in, ${a.usage.output_tokens ?? "?"} out, ${a.usage.cache_read_tokens ?? "?"} cache-read tokens${a.usage.cost_usd === null ? "" : `, $${a.usage.cost_usd}`}`,
        );
      if (a.range)
        lines.push(
          `  - ${a.phase === "review" ? "reviewed" : "commits"}: ${a.range.from ?? "(root)"}..${a.range.to ?? "(none)"}${a.auto_commit ? ` (dx-batch committed ${a.auto_commit.slice(0, 12)})` : ""}`,
        );
      if (a.log_path) lines.push(`  - log: \`${a.log_path}\``);
      for (const f of a.findings) lines.push(`  - ${f.type}: ${cell(f.message)}${f.file ? ` (${f.file}${f.line ? `:${f.line}` : ""})` : ""}`);
      if (a.outcome_path) lines.push(`  - outcome: \`${a.outcome_path}\``);
    }
  }
  lines.push("", "## Timeline", "");
  for (const t of r.timeline) lines.push(`- ${t.at} #${t.seq} ${t.event}${t.reason_code ? ` (${t.reason_code})` : ""}`);
  return `${lines.join("\n")}\n`;
}
