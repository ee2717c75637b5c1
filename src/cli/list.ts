import type { Command } from "commander";
import type { ListRow } from "../app/list.js";
import { printJson } from "./io.js";
import type { CommandContext } from "./main.js";

// `dx-batch list [--json] [--all]` (issue #13). The latest-wave default of the commands that read
// one wave is app/wave-arg.ts.

export function age(fromIso: string | null, nowMs: number): string {
  if (fromIso === null) return "-";
  const s = Math.max(0, Math.floor((nowMs - Date.parse(fromIso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

function counts(r: ListRow): string {
  const st = r.stats;
  if (st === null) return "-";
  const open = st.pending + st.implementing + st.reviewing + st.revision_required;
  return `${st.total} items: ${st.approved} approved, ${st.blocked} blocked, ${st.failed} failed, ${st.cancelled} cancelled, ${open} open`;
}

function liveness(r: ListRow): string {
  const c = r.controller;
  if (c.pid === null) return "no controller";
  return `controller ${c.pid}@${c.host ?? "?"} ${c.alive ? "alive" : "dead"}`;
}

export function listLines(rows: readonly ListRow[], nowMs: number): string[] {
  return rows.map((r) =>
    [
      r.wave_id.padEnd(28),
      r.state.padEnd(10),
      r.reason_code.padEnd(22),
      (r.created_at ?? "-").padEnd(24),
      age(r.created_at, nowMs).padStart(7),
      `${counts(r)} | ${liveness(r)}`,
    ].join(" "),
  );
}

export function registerListCommand(program: Command, ctx: CommandContext): void {
  program
    .command("list")
    .description(
      "Every wave of the artifact dir, newest first: state, reason, created, age, item counts, controller (completed waves older than 30 days only with --all)",
    )
    .option("--config <file>", "config file")
    .option("--json", "one JSON array on stdout (the fields of `check --json` plus created_at)")
    .option("--all", "also completed waves older than 30 days")
    .action(async (o: { config?: string; json?: boolean; all?: boolean }) => {
      const { openContext } = await import("../app/context.js");
      const { listWaves } = await import("../app/list.js");
      const c = openContext(ctx, { config: o.config });
      const nowMs = Date.now();
      const rows = await listWaves(c.layout, { all: o.all === true, nowMs, configSource: c.configSource });
      if (o.json) {
        printJson(ctx.io, rows);
        return;
      }
      if (rows.length === 0) ctx.io.out(`no waves in ${c.layout.root}${o.all ? "" : " (completed waves older than 30 days are hidden; --all shows them)"}`);
      for (const l of listLines(rows, nowMs)) ctx.io.out(l);
    });
}
