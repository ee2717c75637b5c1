import { RunnerReason } from "../../core/reasons.js";
import type { JobState } from "../../core/status.js";
import { isObject, type JsonObject } from "../fs-util.js";
import { isJobState } from "../meta.js";
import { foreignReason, type JobHealth } from "../port.js";

// Reading dx-runner's output: its `started …` line, its refusal reasons, its JSON and exit codes.

/** `started beads=ID provider=P pid=N log=PATH` → its fields. */
export function parseStartedLine(stdout: string): { beads: string; provider: string; pid: number; log: string } | null {
  for (const line of stdout.split("\n")) {
    const m = /^\s*started\s+(.*)$/.exec(line);
    if (!m) continue;
    const kv = new Map<string, string>();
    for (const part of (m[1] ?? "").matchAll(/(\w+)=(\S+)/g)) kv.set(part[1] ?? "", part[2] ?? "");
    const pid = Number(kv.get("pid"));
    const beads = kv.get("beads");
    const log = kv.get("log");
    if (beads !== undefined && Number.isInteger(pid) && pid > 0 && log !== undefined) return { beads, provider: kv.get("provider") ?? "", pid, log };
  }
  return null;
}

/** `reason_code=<code>` printed by dx-runner on a refusal (or `error: <code>: …`, as `dx-batch runner` prints). */
export const reasonCodeIn = (text: string): string | null =>
  /(?:^|\s)reason_code=([A-Za-z0-9_:./-]+)/m.exec(text)?.[1] ?? /^error: (\S+?): /m.exec(text)?.[1] ?? null;

/** The JSON document in dx-runner's stdout (it may be preceded by text lines). */
export function parseJsonDoc(stdout: string): JsonObject | null {
  const t = stdout.trim();
  const candidates = [t, t.slice(t.indexOf("{")), ...t.split("\n").filter((l) => l.trim().startsWith("{"))];
  for (const c of candidates) {
    try {
      const v: unknown = JSON.parse(c);
      if (isObject(v)) return v;
    } catch {
      // try the next reading
    }
  }
  return null;
}

export const num = (v: unknown): number | null => {
  const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
};
export const strOrNull = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);

/** A state from dx-runner's JSON, or from its exit code when the name is not one we know. */
export function stateOf(json: JsonObject | null, exitCode: number | null): JobState {
  if (json !== null && isJobState(json.state)) return json.state;
  switch (exitCode) {
    case 2:
      return "stalled";
    case 23:
      return "no_op";
    case 3:
      return "exited_err";
    case 1:
      return "missing";
    default:
      return json === null ? "missing" : "healthy";
  }
}

/** dx-runner's own names for a provider that refused for quota (REFERENCE §1). */
const DX_RUNNER_QUOTA: ReadonlySet<string> = new Set(["opencode_rate_limited", "gemini_capacity_exhausted"]);

/**
 * The reason_code of dx-runner's check JSON, as ours: its quota names as provider_quota_exhausted,
 * a reason we share unchanged, any other (dx-runner has dozens) runner_reason_unknown, its words kept.
 */
export function dxRunnerReason(raw: string | null): Pick<JobHealth, "reason_code" | "reason_detail"> {
  if (raw !== null && DX_RUNNER_QUOTA.has(raw)) return { reason_code: RunnerReason.provider_quota_exhausted, reason_detail: `dx-runner: ${raw}` };
  return foreignReason(raw === "-" ? null : raw);
}
