import type { WaveEvent } from "../core/events.js";
import type { WaveState } from "../core/state.js";
import { itemById } from "../core/step.js";
import { indented } from "./io.js";

/** One human line per transition (null for events not worth a line). */
export function describeEvent(e: WaveEvent, s: WaveState): string | null {
  switch (e.event) {
    case "wave_created":
      return `wave ${e.wave_id} created with ${e.items.length} item(s)`;
    case "preflight_recorded":
      return `preflight: ${Object.entries(e.providers)
        .map(([p, r]) => `${p} ${r.ok ? "ok" : (r.reason_code ?? "unavailable")}`)
        .join(", ")}`;
    case "wave_started":
    case "wave_resumed":
      return `wave ${s.wave_id} ${e.event === "wave_started" ? "started" : "resumed"} (controller pid ${e.controller_pid})`;
    case "controller_acquired":
      return `controller pid ${e.pid} on ${e.host} holds wave ${s.wave_id} (epoch ${e.epoch})`;
    case "wave_paused":
    case "wave_failed":
    case "wave_cancelled":
      return `wave ${s.wave_id} ${s.status} (${e.reason_code})`;
    case "item_dispatched":
      return `${e.item_id} ${e.phase} attempt ${e.attempt} on ${e.provider}${e.quota ? ` (quota ${e.quota})` : ""}${e.skipped.length ? ` (skipped ${e.skipped.join(",")})` : ""}`;
    case "job_started":
      return null;
    case "auto_commit":
      return `${e.item_id}: dx-batch committed ${e.files.length} file(s) left uncommitted by attempt ${e.attempt} (${e.sha.slice(0, 12)})`;
    case "job_finished":
    case "attempt_failed":
    case "item_settled": {
      const it = itemById(s, e.item_id);
      if (!it) return null;
      const line = `${e.item_id} -> ${it.status} (${it.reason_code})`;
      // git's or the tracker's own words, whole, under the line (the real cause is rarely line one).
      return e.event === "item_settled" && e.error ? `${line}\n${indented(e.error)}` : line;
    }
    case "wave_completed":
      return `wave ${s.wave_id} completed: ${e.approved} approved, ${e.not_approved} not approved`;
    case "wave_notified":
      return e.results.map((r) => `notify ${r.channel}: ${r.ok ? "ok" : `failed: ${r.error ?? "unknown"}`}`).join("; ") || null;
    case "item_delivered":
      return `${e.item_id}: ${e.reason_code}${e.pr_url ? ` ${e.pr_url}` : e.pushed ? ` ${e.remote}/${e.branch}` : ""}${e.error ? `: ${e.error}` : ""}`;
    case "tracker_error":
      return `${e.item_id}: tracker ${e.op} failed (${e.reason_code})${e.detail ? `\n${indented(e.detail)}` : ""}`;
    case "ledger_foreign_bytes":
      return `ledger_foreign_bytes: ${e.bytes} bytes dx-batch did not write moved from ${e.file} to ${e.moved_to}`;
  }
}
