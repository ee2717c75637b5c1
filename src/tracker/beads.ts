import { isValidItemId } from "../core/ids.js";
import type { TrackerReason } from "../core/reasons.js";
import { DxError } from "../errors.js";
import { defaultBdLockFile, runBd, type BdExecOptions } from "./bd-exec.js";
import { isNotFoundError, parseBdOutput } from "./bd-json.js";
import { parseBeadsIssue, toTrackerIssue } from "./issue-shape.js";
import type { ShowResult, TrackerIssue, TrackerPort, TrackerWrite } from "./port.js";

// The Beads tracker (SPEC §10, REFERENCE §2), through the real bd command lines:
//   bd show <id> --json                      bd ready --json -n N [-l label]
//   bd update <id> --status in_progress --json
//   bd comments add <id> <text>              bd close <id> -r <reason> --json
//   bd --version
// (`bd note <id> --message` of the original is not a valid bd call: comments go through
// `bd comments add`.) Writes never throw: a tracker failure is recorded, it never fails the wave.

/**
 * Oldest bd accepted by `versionCheck` (doctor). 0.20.0 is the line from which dx-batch assumes
 * `--json` on show/ready/update/close, `comments add`, `close -r` and `ready -n/-l`; older bd is
 * untested and refused as out of policy.
 */
export const BD_MIN_VERSION = "0.20.0";

/**
 * bd ready prints 10 issues unless told otherwise; `--ready` without `--limit` means all of them,
 * so dx-batch always passes a limit, this one when the operator gave none.
 */
export const BD_READY_DEFAULT_LIMIT = 10_000;

export interface BeadsTrackerOptions {
  command?: string;
  cwd: string;
  /** The whole environment of bd; omitted: this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Cross-process lock serializing bd calls; default: one per bd database (`defaultBdLockFile`). */
  lockFile?: string;
  /** `close()` runs `bd close` only when true; otherwise it is a recorded no-op. */
  close_on_approve?: boolean;
  retry?: { attempts?: number; baseMs?: number; maxMs?: number };
  /** Per bd call. */
  timeoutMs?: number;
  /** Longest wait for the bd lock before the call fails `tracker_lock_timeout`. */
  lockTimeoutMs?: number;
}

type WriteResult = TrackerWrite;

function parseVersion(text: string): [number, number, number] | null {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(text);
  if (!m) return null;
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function versionAtLeast(v: readonly number[], min: readonly number[]): boolean {
  for (let i = 0; i < 3; i++) {
    const a = v[i] ?? 0;
    const b = min[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

/** bd's call options: the lock, retries with backoff, timeouts, from the tracker options. */
function beadsExec(options: BeadsTrackerOptions): BdExecOptions {
  return {
    command: options.command ?? "bd",
    cwd: options.cwd,
    ...(options.env === undefined ? {} : { env: options.env }),
    lockFile: options.lockFile ?? defaultBdLockFile(options.cwd, options.env ?? process.env),
    retry: {
      attempts: Math.max(1, options.retry?.attempts ?? 6),
      baseMs: options.retry?.baseMs ?? 250,
      maxMs: options.retry?.maxMs ?? 5_000,
    },
    timeoutMs: options.timeoutMs ?? 60_000,
    lockTimeoutMs: options.lockTimeoutMs ?? 180_000,
    // A holder older than any call it could be making (timeout × attempts + backoff) is hung.
    lockStaleMs: Math.max(10 * 60_000, 2 * (options.timeoutMs ?? 60_000) * (options.retry?.attempts ?? 6)),
  };
}

const badId = (id: string): { reason_code: TrackerReason; detail: string } | null =>
  isValidItemId(id) ? null : { reason_code: "invalid_item_id", detail: `not a valid item id: ${JSON.stringify(id)}` };

/** A write: success is exit 0 and, with --json, an answer that is not an error object. */
async function bdWrite(exec: BdExecOptions, id: string, args: string[], json: boolean): Promise<WriteResult> {
  const bad = badId(id);
  if (bad) return { ok: false, reason_code: bad.reason_code };
  const call = await runBd(exec, args);
  if (!call.ok) return { ok: false, reason_code: call.reason_code, detail: call.detail };
  if (!json) return { ok: true, reason_code: null };
  const out = parseBdOutput(call.stdout, call.stderr);
  if (out.kind === "data") return { ok: true, reason_code: null };
  const label = `bd ${args.join(" ")}`;
  if (out.kind === "error") {
    return { ok: false, reason_code: isNotFoundError(out.message) ? "item_not_found" : "tracker_command_failed", detail: `${label}: ${out.message}` };
  }
  return { ok: false, reason_code: "tracker_output_invalid", detail: `${label}: ${out.detail}` };
}

/** `bd show <id> --json`: the item itself, never another issue a partial id resolved to. */
async function bdShow(exec: BdExecOptions, id: string): Promise<ShowResult> {
  const bad = badId(id);
  if (bad) return { found: false, ...bad };
  const call = await runBd(exec, ["show", id, "--json"]);
  if (!call.ok) return { found: false, reason_code: call.reason_code, detail: call.detail };
  const out = parseBdOutput(call.stdout, call.stderr);
  if (out.kind === "invalid") return { found: false, reason_code: "tracker_output_invalid", detail: `bd show ${id}: ${out.detail}` };
  if (out.kind === "error") {
    return {
      found: false,
      reason_code: isNotFoundError(out.message) ? "item_not_found" : "tracker_command_failed",
      detail: `bd show ${id}: ${out.message}`,
    };
  }
  const list: unknown[] = Array.isArray(out.data) ? out.data : [out.data];
  if (list.length === 0) return { found: false, reason_code: "item_not_found", detail: `bd show ${id}: empty answer` };
  const parsed = list.map(parseBeadsIssue);
  const bad2 = parsed.findIndex((p) => !p.ok);
  const firstBad = parsed[bad2];
  if (firstBad && !firstBad.ok) {
    return { found: false, reason_code: "tracker_output_invalid", detail: `bd show ${id}: [${bad2}]${firstBad.detail}` };
  }
  // bd resolves partial ids; an answer for another issue is not this item.
  for (const p of parsed) {
    if (p.ok && p.issue.id === id) return { found: true, issue: toTrackerIssue(p.issue, p.deps) };
  }
  const got = parsed.flatMap((p) => (p.ok ? [p.issue.id] : [])).join(",");
  return { found: false, reason_code: "item_not_found", detail: `bd show ${id} answered with ${got}` };
}

/** `bd ready --json -n N [-l label]`; unlike writes, a failure here throws: there is nothing to run. */
async function bdReady(exec: BdExecOptions, opts: { limit?: number; label?: string }): Promise<TrackerIssue[]> {
  const limit = opts.limit ?? BD_READY_DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new DxError("invalid_limit", `--limit must be a positive integer, got ${String(opts.limit)}`);
  }
  const args = ["ready", "--json", "-n", String(limit)];
  if (opts.label !== undefined) {
    if (opts.label === "" || opts.label.startsWith("-")) {
      throw new DxError("invalid_label", `not a usable label: ${JSON.stringify(opts.label)}`);
    }
    args.push("-l", opts.label);
  }
  const call = await runBd(exec, args);
  if (!call.ok) {
    throw new DxError(call.reason_code, `bd ready failed: ${call.detail}`, {
      remedy: "run `bd ready --json` in the repository to see the problem, or pass --items",
    });
  }
  const out = parseBdOutput(call.stdout, call.stderr);
  if (out.kind === "error") throw new DxError("tracker_command_failed", `bd ready: ${out.message}`);
  if (out.kind === "invalid") throw new DxError("tracker_output_invalid", `bd ready: ${out.detail}`);
  if (!Array.isArray(out.data)) throw new DxError("tracker_output_invalid", "bd ready: expected a JSON array of issues");
  const data: unknown[] = out.data;
  const issues: TrackerIssue[] = [];
  for (const [i, raw] of data.entries()) {
    const p = parseBeadsIssue(raw);
    if (!p.ok) throw new DxError("tracker_output_invalid", `bd ready: [${i}]${p.detail}`);
    issues.push(toTrackerIssue(p.issue, p.deps));
  }
  return issues.slice(0, limit);
}

async function bdVersionCheck(exec: BdExecOptions): Promise<TrackerWrite & { detail: string }> {
  const call = await runBd(exec, ["--version"]);
  if (!call.ok) return { ok: false, reason_code: call.reason_code, detail: call.detail };
  const text = `${call.stdout}\n${call.stderr}`.trim();
  const v = parseVersion(text);
  if (!v) return { ok: false, reason_code: "tracker_version_unknown", detail: `bd --version printed no version: ${text.slice(0, 200)}` };
  const min = parseVersion(BD_MIN_VERSION) ?? [0, 0, 0];
  const shown = v.join(".");
  if (!versionAtLeast(v, min)) {
    return { ok: false, reason_code: "tracker_version_too_old", detail: `bd ${shown} is older than the minimum ${BD_MIN_VERSION}` };
  }
  return { ok: true, reason_code: null, detail: `bd ${shown} (minimum ${BD_MIN_VERSION})` };
}

export function createBeadsTracker(options: BeadsTrackerOptions): TrackerPort {
  const exec = beadsExec(options);
  const closeOnApprove = options.close_on_approve ?? false;
  return {
    type: "beads",
    show: (id: string): Promise<ShowResult> => bdShow(exec, id),
    ready: (opts: { limit?: number; label?: string }): Promise<TrackerIssue[]> => bdReady(exec, opts),
    markInProgress: (id: string): Promise<WriteResult> => bdWrite(exec, id, ["update", id, "--status", "in_progress", "--json"], true),
    comment(id: string, text: string): Promise<WriteResult> {
      // A text starting with "-" would be read as a flag: `--` ends bd's flags before it.
      const args = text.startsWith("-") ? ["comments", "add", id, "--", text] : ["comments", "add", id, text];
      return bdWrite(exec, id, args, false);
    },
    async close(id: string, reason: string): Promise<WriteResult> {
      if (!closeOnApprove) return { ok: true, reason_code: "tracker_close_disabled" };
      return bdWrite(exec, id, ["close", id, "-r", reason, "--json"], true);
    },
    versionCheck: () => bdVersionCheck(exec),
  };
}
