import type { JobState } from "../../core/status.js";
import type { JsonObject } from "../fs-util.js";
import { readIntFile, statQuiet } from "../fs-util.js";
import { assertJobId } from "../paths.js";
import { missingHealth, type CheckOptions, type JobHealth, type JobRef } from "../port.js";
import { failed, jobFile, knownKey, type AdapterContext, type Known } from "./context.js";
import { dxRunnerReason, num, parseJsonDoc, stateOf, strOrNull } from "./parse.js";

// `dx-runner check --json`, read into our JobHealth. dx-runner has no runtime limit of its own,
// so max_runtime_minutes is enforced here with `dx-runner stop`.

const TERMINAL: ReadonlySet<JobState> = new Set(["exited_ok", "exited_err", "no_op_success", "stopped", "timed_out"]);

export async function checkViaDxRunner(ctx: AdapterContext, ref: JobRef, o: CheckOptions): Promise<JobHealth> {
  assertJobId(ref.job_id);
  const k = ctx.known.get(knownKey(ref.provider, ref.job_id));
  const base: JobHealth = { ...missingHealth(ref, null), started_at: k?.started_at ?? null };
  if (k !== undefined && k.run_instance !== ref.run_instance) return { ...base, reason_code: "run_instance_mismatch" };
  const r = await ctx.run(["check", "--beads", ref.job_id, "--stall-minutes", String(o.stall_minutes), "--json"]);
  if (r.spawnError !== null || r.timedOut) throw failed(ctx, "check", r);
  const json = parseJsonDoc(r.stdout);
  const state = stateOf(json, r.exitCode);
  if (json === null) return { ...base, state, reason_code: state === "missing" ? "job_not_found" : null };
  const theirs = strOrNull(json.run_instance);
  if (k !== undefined && theirs !== null) {
    if (k.theirs === null) k.theirs = theirs;
    else if (k.theirs !== theirs) return { ...base, reason_code: "run_instance_mismatch" };
  }
  const h = healthFromJson(ctx, ref, base, k, json, state);
  if (!TERMINAL.has(state) && state !== "missing" && o.max_runtime_minutes > 0 && h.pid_age_sec > o.max_runtime_minutes * 60) {
    await ctx.run(["stop", "--beads", ref.job_id], {}, ctx.stopTimeoutMs);
    return { ...h, state: "timed_out", reason_code: "max_runtime_exceeded" };
  }
  return h;
}

/** dx-runner's check JSON, with the pid, exit code and times its files tell when the JSON does not. */
function healthFromJson(ctx: AdapterContext, ref: JobRef, base: JobHealth, k: Known | undefined, json: JsonObject, state: JobState): JobHealth {
  const pidAge = num(json.pid_age_sec) ?? (k ? (ctx.clock() - k.started_at_ms) / 1000 : 0);
  const rcPath = jobFile(ctx, ref.provider, ref.job_id, "rc");
  const exitCode = num(json.exit_code) ?? (TERMINAL.has(state) || state === "no_op" ? readIntFile(rcPath) : null);
  const rcSt = statQuiet(rcPath);
  return {
    ...base,
    state,
    ...dxRunnerReason(strOrNull(json.reason_code)),
    exit_code: exitCode,
    pid: num(json.pid) ?? readIntFile(jobFile(ctx, ref.provider, ref.job_id, "pid")),
    worktree: strOrNull(json.worktree),
    mutation_count: num(json.mutation_count) ?? 0,
    log_bytes: num(json.log_bytes) ?? 0,
    cpu_time_sec: num(json.cpu_time_sec) ?? 0,
    pid_age_sec: pidAge,
    log_age_sec: num(json.log_age_sec) ?? 0,
    started_at: k?.started_at ?? new Date(ctx.clock() - pidAge * 1000).toISOString(),
    finished_at: TERMINAL.has(state) && rcSt ? new Date(rcSt.mtimeMs).toISOString() : null,
  };
}
