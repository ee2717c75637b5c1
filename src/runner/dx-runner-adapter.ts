import { readdirSync } from "node:fs";
import path from "node:path";
import type { WorkspacePolicy } from "../config/types.js";
import { DxError } from "../errors.js";
import { checkWorktreePolicy } from "../workspace/policy.js";
import { runBounded, type BoundedResult } from "./bounded-run.js";
import { readContractSource } from "./contract-source.js";
import { isObject, readIntFile, statQuiet, type JsonObject } from "./fs-util.js";
import { isJobState } from "./meta.js";
import { assertJobId, isValidProviderName } from "./paths.js";
import { missingHealth, type CheckOptions, type ContractSource, type JobHealth, type JobRef, type JobSpec, type ProviderAvailability, type RunnerPort, type StartedJob } from "./port.js";
import { processAlive } from "./proc.js";
import type { JobState } from "../core/status.js";

// The runner port over an installed `dx-runner` (REFERENCE §1), for installations that have it.
// It speaks dx-runner's command line only: argv (never a shell), its `started …` line, its JSON
// and exit codes. It can only poll, so onExit is a no-op.

export interface DxRunnerAdapterOptions {
  /** The dx-runner executable, or an argv prefix such as ["bash", "/opt/dx-runner"]. */
  command: string | readonly string[];
  env: NodeJS.ProcessEnv;
  /** dx-runner's file base (DX_RUNNER_LOG_BASE): where its logs, pid and rc files are. */
  log_dir?: string;
  /** When given, a worktree outside the policy is refused before dx-runner is asked. */
  workspace?: WorkspacePolicy;
  timeout_ms?: number;
  /** `stop` waits for dx-runner's own grace period. */
  stop_timeout_ms?: number;
  clock?: () => number;
}

/** A JobRef may carry the contract path it was started with; the port's own JobRef does not. */
export type AdapterJobRef = JobRef & { contract_file?: string };

interface Known {
  run_instance: string;
  contract_file: string;
  log_path: string;
  started_at: string;
  started_at_ms: number;
  /** dx-runner's own run_instance, learned at the first check. */
  theirs: string | null;
}

const TERMINAL: ReadonlySet<JobState> = new Set(["exited_ok", "exited_err", "no_op_success", "stopped", "timed_out"]);
const key = (provider: string, job: string): string => `${provider}/${job}`;

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

const num = (v: unknown): number | null => {
  const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
};
const strOrNull = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);

/** A state from dx-runner's JSON, or from its exit code when the name is not one we know. */
function stateOf(json: JsonObject | null, exitCode: number | null): JobState {
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

export function createDxRunnerAdapter(opts: DxRunnerAdapterOptions): RunnerPort {
  const prefix = typeof opts.command === "string" ? [opts.command] : [...opts.command];
  const logBase = path.resolve(opts.log_dir ?? opts.env.DX_RUNNER_LOG_BASE ?? "/tmp/dx-runner");
  const env: NodeJS.ProcessEnv = { ...opts.env, DX_RUNNER_LOG_BASE: logBase };
  const timeoutMs = opts.timeout_ms ?? 30_000;
  const stopTimeoutMs = opts.stop_timeout_ms ?? 60_000;
  const clock = opts.clock ?? Date.now;
  const known = new Map<string, Known>();

  const run = (args: string[], extraEnv: Record<string, string> = {}, t = timeoutMs): Promise<BoundedResult> =>
    runBounded([...prefix, ...args], { env: { ...env, ...extraEnv }, timeoutMs: t });

  function failed(what: string, r: BoundedResult): DxError {
    if (r.spawnError !== null) return new DxError("dx_runner_missing", `cannot run ${prefix.join(" ")}: ${r.spawnError}`, { remedy: "install dx-runner or set runner.command in the config" });
    if (r.timedOut) return new DxError("dx_runner_timeout", `${prefix.join(" ")} ${what} did not finish in ${timeoutMs} ms`);
    const detail = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-1)[0] ?? "";
    return new DxError("dx_runner_failed", `${prefix.join(" ")} ${what} exited ${r.exitCode ?? r.signal ?? "abnormally"}${detail ? `: ${detail}` : ""}`);
  }

  const filePath = (provider: string, job: string, ext: string): string => path.join(logBase, provider, `${job}.${ext}`);

  return {
    async preflight(provider: string): Promise<ProviderAvailability> {
      const r = await run(["preflight", "--provider", provider]);
      if (r.spawnError !== null || r.timedOut) {
        const e = failed("preflight", r);
        return { provider, ok: false, reason_code: e.code, detail: e.message };
      }
      if (r.exitCode === 0) return { provider, ok: true, reason_code: null, detail: null };
      const text = `${r.stdout}\n${r.stderr}`;
      return { provider, ok: false, reason_code: reasonCodeIn(text) ?? `${provider}_preflight_failed`, detail: text.trim().split("\n").slice(-1)[0] ?? null };
    },

    async start(spec: JobSpec): Promise<StartedJob> {
      assertJobId(spec.job_id);
      if (!isValidProviderName(spec.provider)) throw new DxError("unknown_provider", `invalid provider name ${JSON.stringify(spec.provider)}`, { exitCode: 20 });
      const worktree = path.resolve(spec.worktree);
      if (opts.workspace !== undefined) {
        const v = checkWorktreePolicy(worktree, opts.workspace);
        if (!v.ok) throw new DxError(v.reason_code, v.detail, { exitCode: 22 });
      }
      const args = ["start", "--beads", spec.job_id, "--provider", spec.provider, "--prompt-file", spec.prompt_file, "--worktree", worktree];
      if (spec.model) args.push("--model", spec.model);
      const r = await run(args, {
        DX_BATCH_WAVE_ID: spec.wave_id,
        DX_BATCH_ITEM_ID: spec.item_id,
        DX_BATCH_JOB_ID: spec.job_id,
        DX_BATCH_PHASE: spec.phase,
        DX_BATCH_ATTEMPT: String(spec.attempt),
        DX_BATCH_RUN_INSTANCE: spec.run_instance,
        DX_BATCH_PROMPT_FILE: spec.prompt_file,
        DX_BATCH_CONTRACT_FILE: spec.contract_file,
      });
      const text = `${r.stdout}\n${r.stderr}`;
      const reason = reasonCodeIn(text);
      if (r.spawnError !== null || r.timedOut) throw failed("start", r);
      switch (r.exitCode) {
        case 0:
          break;
        case 1:
          throw new DxError("job_already_running", `dx-runner: job ${spec.job_id} is already running`, { exitCode: 1 });
        case 2:
          throw new DxError("usage", `dx-runner start refused its arguments: ${text.trim()}`, { exitCode: 2 });
        case 20:
          throw new DxError("unknown_provider", `dx-runner has no provider ${spec.provider}`, { exitCode: 20 });
        case 21:
          throw new DxError(reason ?? `${spec.provider}_preflight_failed`, `dx-runner preflight failed for ${spec.provider}`, { exitCode: 21 });
        case 22:
          throw new DxError(reason ?? `canonical_worktree_forbidden:${worktree}`, `dx-runner refused worktree ${worktree}`, { exitCode: 22 });
        case 26:
          throw new DxError("provider_concurrency_cap", `dx-runner: ${spec.provider} is at its concurrency cap`, { exitCode: 26 });
        default:
          throw failed("start", r);
      }
      const started = parseStartedLine(r.stdout);
      if (started === null) throw new DxError("dx_runner_bad_output", `dx-runner start printed no "started beads=… pid=… log=…" line: ${r.stdout.trim().slice(0, 200)}`);
      const now = clock();
      known.set(key(spec.provider, spec.job_id), {
        run_instance: spec.run_instance,
        contract_file: spec.contract_file,
        log_path: started.log,
        started_at: new Date(now).toISOString(),
        started_at_ms: now,
        theirs: null,
      });
      // dx-runner does not report a process group; its launcher leads one in the usual setsid setup.
      return { pid: started.pid, pgid: started.pid, started_at: new Date(now).toISOString(), log_path: started.log };
    },

    async check(ref: JobRef, o: CheckOptions): Promise<JobHealth> {
      assertJobId(ref.job_id);
      const k = known.get(key(ref.provider, ref.job_id));
      const base: JobHealth = { ...missingHealth(ref, null), started_at: k?.started_at ?? null };
      if (k !== undefined && k.run_instance !== ref.run_instance) return { ...base, reason_code: "run_instance_mismatch" };
      const r = await run(["check", "--beads", ref.job_id, "--stall-minutes", String(o.stall_minutes), "--json"]);
      if (r.spawnError !== null || r.timedOut) throw failed("check", r);
      const json = parseJsonDoc(r.stdout);
      const state = stateOf(json, r.exitCode);
      if (json === null) return { ...base, state, reason_code: state === "missing" ? "job_not_found" : null };
      const theirs = strOrNull(json.run_instance);
      if (k !== undefined && theirs !== null) {
        if (k.theirs === null) k.theirs = theirs;
        else if (k.theirs !== theirs) return { ...base, reason_code: "run_instance_mismatch" };
      }
      const pidAge = num(json.pid_age_sec) ?? (k ? (clock() - k.started_at_ms) / 1000 : 0);
      const rcPath = filePath(ref.provider, ref.job_id, "rc");
      const exitCode = num(json.exit_code) ?? (TERMINAL.has(state) || state === "no_op" ? readIntFile(rcPath) : null);
      const rcSt = statQuiet(rcPath);
      const h: JobHealth = {
        ...base,
        state,
        reason_code: strOrNull(json.reason_code),
        exit_code: exitCode,
        pid: num(json.pid) ?? readIntFile(filePath(ref.provider, ref.job_id, "pid")),
        worktree: strOrNull(json.worktree),
        mutation_count: num(json.mutation_count) ?? 0,
        log_bytes: num(json.log_bytes) ?? 0,
        cpu_time_sec: num(json.cpu_time_sec) ?? 0,
        pid_age_sec: pidAge,
        log_age_sec: num(json.log_age_sec) ?? 0,
        started_at: k?.started_at ?? new Date(clock() - pidAge * 1000).toISOString(),
        finished_at: TERMINAL.has(state) && rcSt ? new Date(rcSt.mtimeMs).toISOString() : null,
      };
      // dx-runner has no runtime limit of its own: enforce max_runtime_minutes here.
      if (!TERMINAL.has(state) && state !== "missing" && o.max_runtime_minutes > 0 && pidAge > o.max_runtime_minutes * 60) {
        await run(["stop", "--beads", ref.job_id], {}, stopTimeoutMs);
        return { ...h, state: "timed_out", reason_code: "max_runtime_exceeded" };
      }
      return h;
    },

    async stop(ref: JobRef): Promise<{ stopped: boolean }> {
      assertJobId(ref.job_id);
      const r = await run(["stop", "--beads", ref.job_id], {}, stopTimeoutMs);
      if (r.spawnError !== null || r.timedOut) throw failed("stop", r);
      return { stopped: r.exitCode === 0 };
    },

    async prune(): Promise<{ checked: number; pruned: number }> {
      const r = await run(["prune", "--json"]);
      if (r.spawnError !== null || r.timedOut || r.exitCode !== 0) throw failed("prune", r);
      const json = parseJsonDoc(r.stdout);
      return { checked: num(json?.checked) ?? 0, pruned: num(json?.pruned) ?? 0 };
    },

    async readContract(ref: AdapterJobRef): Promise<ContractSource> {
      assertJobId(ref.job_id);
      const k = known.get(key(ref.provider, ref.job_id));
      if (k !== undefined && k.run_instance !== ref.run_instance) {
        return { found: false, reason_code: "run_instance_mismatch", detail: `the last start of ${ref.job_id} here was run ${k.run_instance}` };
      }
      const contractFile = ref.contract_file ?? k?.contract_file ?? null;
      const log = k?.log_path ?? filePath(ref.provider, ref.job_id, "log");
      return readContractSource(contractFile, log);
    },

    onExit() {
      return () => undefined;
    },

    async livePids(): Promise<number[]> {
      const pids = new Set<number>();
      let providers: string[] = [];
      try {
        providers = readdirSync(logBase);
      } catch {
        return [];
      }
      for (const prov of providers) {
        let files: string[] = [];
        try {
          files = readdirSync(path.join(logBase, prov)).filter((f) => f.endsWith(".pid"));
        } catch {
          continue;
        }
        for (const f of files) {
          const pid = readIntFile(path.join(logBase, prov, f));
          if (pid !== null && (await processAlive(pid, null))) pids.add(pid);
        }
      }
      return [...pids].sort((a, b) => a - b);
    },
  };
}
