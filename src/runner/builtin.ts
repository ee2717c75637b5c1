import { monoNowMs, monoStamp } from "../store/mono.js";
import { hostId } from "../store/identity.js";
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, statSync } from "node:fs";
import path from "node:path";
import type { ProviderConfig, WorkspacePolicy } from "../config/types.js";
import { isValidItemId } from "../core/ids.js";
import type { JobState } from "../core/status.js";
import { DxError } from "../errors.js";
import { checkWorktreePolicy } from "../workspace/policy.js";
import { readContractSource } from "./contract-source.js";
import { parseJsonObject, readIntFile, readTextQuiet, removeQuiet, statQuiet, writeFileAtomicSync, writeJsonAtomic } from "./fs-util.js";
import { classifyExit, isStalled, madeProgress, overRuntime } from "./health.js";
import { logTailMentionsQuota } from "./log-signals.js";
import { parseStoredHealth, readJobMeta, readJobProgress, writeJobProgress, type JobMeta, type JobProgress } from "./meta.js";
import { assertJobId, isValidProviderName, jobPaths, type JobPaths } from "./paths.js";
import { missingHealth, type CheckOptions, type ContractSource, type JobHealth, type JobRef, type JobSpec, type ProviderAvailability, type RunnerPort, type StartedJob } from "./port.js";
import { groupCpuSeconds, groupMembers, processAlive, processStartToken, signalGroup, waitSignalsHandled } from "./proc.js";
import { resolveExecutable, DEFAULT_PREFLIGHT_TIMEOUT_MS } from "./providers/common.js";
import { createProviderRegistry, type ProviderRegistry } from "./providers/index.js";
import { SHELL, wrapperArgs, wrapperToolsPath } from "./wrapper.js";
import { commitsSince, probeWorktree, worktreeToplevel, type WorktreeProbe } from "./worktree-probe.js";

// The built-in runner (SPEC §9). Every job runs detached in its own process group under the sh
// wrapper (wrapper.ts), and everything about it lives in files, so a later process (a resumed
// controller, `dx-batch runner check`) sees exactly what the launcher saw. The launcher adds only
// speed: it hears the wrapper's exit event at once.

export interface BuiltinRunnerOptions {
  log_dir: string;
  /** Config entries: overrides of the built-ins and `command` providers. */
  providers?: Record<string, ProviderConfig>;
  workspace: WorkspacePolicy;
  max_log_mb: number;
  /** The environment agents inherit (and where binaries and auth signals are looked up). */
  env: NodeJS.ProcessEnv;
  wave_id?: string;
  clock?: () => number;
  /** SIGTERM → SIGKILL grace for stop and for a job over max runtime. Default 10 s (SPEC §8). */
  stop_grace_ms?: number;
  preflight_timeout_ms?: number;
}

export type WorktreeProbeMode = "when_needed" | "always";

export interface BuiltinCheckOptions extends CheckOptions {
  /** "when_needed" (default) runs git only when log and CPU show no progress, or at exit. */
  probe_worktree?: WorktreeProbeMode;
}

export interface BuiltinRunner extends RunnerPort {
  readonly log_dir: string;
  readonly providers: ProviderRegistry;
  check(ref: JobRef, opts: BuiltinCheckOptions): Promise<JobHealth>;
  stop(ref: JobRef, opts?: { grace_ms?: number }): Promise<{ stopped: boolean }>;
  /** Every job with files under log_dir (its current run_instance). */
  listJobs(): JobRef[];
  /** The newest job with this id across providers, for commands that name only `--beads ID`. */
  findJob(jobId: string, provider?: string): JobRef | null;
  meta(ref: JobRef): JobMeta | null;
  paths(ref: JobRef): JobPaths;
}

/** Without a pid after this long, a job whose launcher vanished mid-start is lost, not launching. */
const LAUNCH_GRACE_MS = 30_000;
/** A running job with no output yet is "launching" for its first seconds. */
const FIRST_OUTPUT_GRACE_MS = 10_000;
const POLL_MS = 25;
const RESEND_MS = 500;
const FINAL_KILL_WAIT_MS = 10_000;

const TERMINAL: ReadonlySet<JobState> = new Set(["exited_ok", "exited_err", "no_op_success", "stopped", "timed_out"]);

const iso = (ms: number): string => new Date(ms).toISOString();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function createBuiltinRunner(opts: BuiltinRunnerOptions): BuiltinRunner {
  const logDir = path.resolve(opts.log_dir);
  // Every duration on this host's monotonic clock (SPEC §15.3): a wall-clock jump kills no agent.
  const clock = opts.clock ?? monoNowMs;
  /** When the job started on `clock`; a job of another boot (or an older meta) from its wall start. */
  const startMono = (meta: JobMeta): number =>
    meta.started_mono_ms !== undefined && meta.boot === monoStamp().boot ? meta.started_mono_ms : clock() - Math.max(0, Date.now() - meta.started_at_ms);
  const graceMs = opts.stop_grace_ms ?? 10_000;
  const preflightTimeout = opts.preflight_timeout_ms ?? DEFAULT_PREFLIGHT_TIMEOUT_MS;
  const maxLogBytes = Math.max(1, Math.floor(opts.max_log_mb * 1024 * 1024));
  const registry = createProviderRegistry(opts.providers ?? {});
  const listeners = new Set<(ref: JobRef, exitCode: number | null) => void>();

  const pathsOf = (ref: JobRef): JobPaths => jobPaths(logDir, ref.provider, ref.job_id);

  const notifyExit = (ref: JobRef, exitCode: number | null): void => {
    for (const l of [...listeners]) {
      try {
        l(ref, exitCode);
      } catch {
        // A listener's failure is its own; the others still hear the exit.
      }
    }
  };

  async function jobAlive(meta: JobMeta, p: JobPaths): Promise<boolean> {
    const pid = meta.pid ?? readIntFile(p.pid);
    if (pid === null) return meta.pid === null && clock() - startMono(meta) < LAUNCH_GRACE_MS && !existsSync(p.rc);
    if (await processAlive(pid, meta.pid_start)) return true;
    // The wrapper is gone; its group lives on only if the wrapper itself was killed alone.
    return !existsSync(p.rc) && meta.pgid !== null && (await groupMembers(meta.pgid)).length > 0;
  }

  /** Is `pgid` still the group this job started? A pid is not reused while its group has members. */
  async function groupIsOurs(meta: JobMeta, pgid: number): Promise<boolean> {
    // Never signal a group recorded by another host (a shared runner_log_dir) or one whose start
    // time cannot be verified (SPEC §15.4).
    if ((meta.host !== undefined && meta.host !== hostId()) || meta.pid_start === null) return false;
    if (await processAlive(pgid, meta.pid_start)) return true;
    if (meta.pid_start !== null && (await processAlive(pgid, null))) return false;
    return true;
  }

  /**
   * Poll until the group is empty. With `resend`, the signal is repeated now and then: a SIGTERM
   * that landed while the wrapper was still setting up (signals ignored) must not be lost.
   */
  async function waitGroupGone(pgid: number, ms: number, resend?: NodeJS.Signals): Promise<boolean> {
    const start = performance.now();
    let lastSent = start;
    for (;;) {
      if ((await groupMembers(pgid)).length === 0) return true;
      const now = performance.now();
      if (now - start >= ms) return false;
      if (resend !== undefined && now - lastSent >= RESEND_MS) {
        signalGroup(pgid, resend);
        lastSent = now;
      }
      await sleep(POLL_MS);
    }
  }

  function liveJobsOf(provider: string, exceptJob: string): Promise<boolean[]> {
    const dir = path.join(logDir, provider);
    let names: string[] = [];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith(".meta.json"));
    } catch {
      return Promise.resolve([]);
    }
    return Promise.all(
      names
        .map((n) => n.slice(0, -".meta.json".length))
        .filter((job) => job !== exceptJob)
        .map(async (job) => {
          const meta = readJobMeta(path.join(dir, `${job}.meta.json`));
          return meta !== null && (await jobAlive(meta, jobPaths(logDir, provider, job)));
        }),
    );
  }

  async function mutationCount(meta: JobMeta, probe: WorktreeProbe): Promise<number> {
    if (!probe.ok || probe.signature === meta.signature_at_start) return 0;
    const commits = probe.head !== meta.head_at_start ? await commitsSince(meta.worktree, meta.head_at_start) : 0;
    return probe.dirty + commits;
  }

  /** A finished job's verdict, memoized so later checks neither re-probe git nor change their mind. */
  function readOutcome(p: JobPaths, runInstance: string): JobHealth | null {
    const o = parseJsonObject(readTextQuiet(p.outcome));
    if (!o || o.run_instance !== runInstance) return null;
    const h = parseStoredHealth(o.health);
    return h !== null && h.run_instance === runInstance && TERMINAL.has(h.state) ? h : null;
  }

  function writeOutcome(p: JobPaths, h: JobHealth): void {
    writeJsonAtomic(p.outcome, { version: 1, run_instance: h.run_instance, health: h });
  }

  const initialProgress = (meta: JobMeta): JobProgress => ({
    run_instance: meta.run_instance,
    observed_at_ms: startMono(meta),
    last_progress_at_ms: startMono(meta),
    log_bytes: 0,
    cpu_sec: 0,
    signature: meta.signature_at_start,
    mutation_count: 0,
    stop_requested_at_ms: null,
    timed_out_at_ms: null,
  });

  function killLater(pgid: number, meta: JobMeta, ms: number): void {
    setTimeout(() => {
      void groupIsOurs(meta, pgid).then((ours) => {
        if (ours) signalGroup(pgid, "SIGKILL");
      });
    }, ms).unref();
  }

  const runner: BuiltinRunner = {
    log_dir: logDir,
    providers: registry,

    async preflight(name: string): Promise<ProviderAvailability> {
      const provider = registry.get(name);
      if (provider === null) return { provider: name, ok: false, reason_code: "unknown_provider", detail: `no provider named ${name}` };
      return provider.preflight({ env: opts.env, timeout_ms: preflightTimeout });
    },

    async start(spec: JobSpec): Promise<StartedJob> {
      assertJobId(spec.job_id);
      if (!isValidItemId(spec.item_id)) throw new DxError("invalid_item_id", `invalid item id ${JSON.stringify(spec.item_id)}`);
      const provider = isValidProviderName(spec.provider) ? registry.get(spec.provider) : null;
      if (provider === null) {
        throw new DxError("unknown_provider", `no provider named ${spec.provider}`, {
          exitCode: 20,
          remedy: `use one of ${registry.names().join(", ")} or define it under "providers" in the config`,
        });
      }
      const p = jobPaths(logDir, spec.provider, spec.job_id);
      const worktree = path.resolve(spec.worktree);
      if (!statQuiet(worktree)?.isDirectory()) {
        throw new DxError(`worktree_missing:${worktree}`, `worktree ${worktree} does not exist`, { exitCode: 22, remedy: "create the worktree first (dx-batch creates it when `repo` is configured)" });
      }
      const verdict = checkWorktreePolicy(worktree, opts.workspace);
      if (!verdict.ok) {
        throw new DxError(verdict.reason_code, verdict.detail, { exitCode: 22, remedy: "run agents only in worktrees under workspace_root or allowed_prefixes, never in a protected checkout" });
      }
      if (!statQuiet(spec.prompt_file)?.isFile()) throw new DxError("prompt_file_missing", `prompt file ${spec.prompt_file} does not exist`, { exitCode: 2 });

      const old = readJobMeta(p.meta);
      if (old !== null && (await jobAlive(old, p))) {
        throw new DxError("job_already_running", `job ${spec.job_id} (${spec.provider}) is already running as pid ${old.pid ?? "?"}`, {
          exitCode: 1,
          remedy: `dx-batch runner stop --beads ${spec.job_id}`,
        });
      }
      if (provider.max_parallel !== null) {
        const live = (await liveJobsOf(spec.provider, spec.job_id)).filter(Boolean).length;
        if (live >= provider.max_parallel) {
          throw new DxError("provider_concurrency_cap", `${spec.provider} already runs ${live} job(s), its max_parallel is ${provider.max_parallel}`, { exitCode: 26 });
        }
      }

      const plan = await provider.plan({
        job_id: spec.job_id,
        item_id: spec.item_id,
        wave_id: spec.wave_id || (opts.wave_id ?? ""),
        phase: spec.phase,
        attempt: spec.attempt,
        run_instance: spec.run_instance,
        worktree,
        prompt_file: spec.prompt_file,
        contract_file: spec.contract_file,
        model: spec.model ?? null,
        env: opts.env,
      });
      const env: NodeJS.ProcessEnv = { ...opts.env };
      for (const k of plan.unset_env) delete env[k];
      const dxEnv: Record<string, string> = {
        DX_BATCH_WAVE_ID: spec.wave_id || (opts.wave_id ?? ""),
        DX_BATCH_ITEM_ID: spec.item_id,
        DX_BATCH_JOB_ID: spec.job_id,
        DX_BATCH_PHASE: spec.phase,
        DX_BATCH_ATTEMPT: String(spec.attempt),
        DX_BATCH_RUN_INSTANCE: spec.run_instance,
        DX_BATCH_PROMPT_FILE: spec.prompt_file,
        DX_BATCH_CONTRACT_FILE: spec.contract_file,
      };
      Object.assign(env, plan.env, dxEnv);
      const bin = resolveExecutable(plan.argv[0] ?? "", env);
      if (bin === null) {
        throw new DxError(`${spec.provider}_binary_missing`, `${plan.argv[0] ?? "(empty command)"} not found on PATH`, { exitCode: 21 });
      }
      const argv = [bin, ...plan.argv.slice(1)];

      const toplevel = await worktreeToplevel(worktree);
      const probe = await probeWorktree(worktree, toplevel);

      mkdirSync(p.dir, { recursive: true, mode: 0o700 });
      for (const f of [p.rc, `${p.rc}.tmp`, `${p.rc}.fifo`, p.outcome, p.progress, p.contract, spec.contract_file, p.pid]) removeQuiet(f);
      if (existsSync(p.log)) renameSync(p.log, p.rotated_log);

      const startedMs = Date.now();
      let meta: JobMeta = {
        version: 1,
        job_id: spec.job_id,
        item_id: spec.item_id,
        wave_id: dxEnv.DX_BATCH_WAVE_ID ?? "",
        provider: spec.provider,
        phase: spec.phase,
        attempt: spec.attempt,
        run_instance: spec.run_instance,
        started_at: iso(startedMs),
        started_at_ms: startedMs,
        started_mono_ms: clock(),
        boot: monoStamp().boot,
        argv: [bin, ...plan.argv_for_meta.slice(1)],
        env_keys: [...Object.keys(plan.env), ...Object.keys(dxEnv)].sort(),
        worktree,
        worktree_toplevel: toplevel,
        head_at_start: probe.head,
        dirty_at_start: probe.dirty,
        signature_at_start: probe.signature,
        pid: null,
        pgid: null,
        pid_start: null,
        log_path: p.log,
        prompt_file: spec.prompt_file,
        contract_file: spec.contract_file,
        model: plan.model,
        max_log_bytes: maxLogBytes,
        launcher_pid: process.pid,
        host: hostId(),
      };
      // Written before the spawn: a launcher that dies in between leaves a "launching" job that
      // turns into a lost one, never a job nobody can find.
      writeJsonAtomic(p.meta, meta);
      writeJobProgress(p.progress, initialProgress(meta));

      const logFd = openSync(p.log, "a", 0o600);
      let inFd: number | null = null;
      let child;
      try {
        inFd = plan.stdin === "prompt" ? openSync(spec.prompt_file, "r") : null;
        child = spawn(SHELL, wrapperArgs({ rcPath: p.rc, capBytes: maxLogBytes, argv, toolsPath: wrapperToolsPath() }), {
          cwd: worktree,
          env,
          detached: true,
          stdio: [inFd ?? "ignore", logFd, logFd],
        });
      } finally {
        closeSync(logFd);
        if (inFd !== null) closeSync(inFd);
      }
      const pid = child.pid;
      if (pid === undefined) {
        const err = await new Promise<Error>((resolve) => child.once("error", resolve));
        throw new DxError("spawn_failed", `cannot start ${SHELL}: ${err.message}`);
      }
      child.unref();
      const ref: JobRef = { job_id: spec.job_id, provider: spec.provider, run_instance: spec.run_instance };
      child.once("exit", () => notifyExit(ref, readIntFile(p.rc)));

      // Until the wrapper's first line has run, a SIGTERM (an early stop) would kill it unarmed.
      await waitSignalsHandled(pid, 2_000);
      const token = await processStartToken(pid);
      writeFileAtomicSync(p.pid, `${pid}\n`);
      meta = { ...meta, pid, pgid: pid, pid_start: token };
      writeJsonAtomic(p.meta, meta);
      return { pid, pgid: pid, started_at: meta.started_at, log_path: p.log };
    },

    async check(ref: JobRef, o: BuiltinCheckOptions): Promise<JobHealth> {
      const p = pathsOf(ref);
      const meta = readJobMeta(p.meta);
      if (meta === null) return missingHealth(ref, "job_not_found", null);
      // Files of another run_instance are never read as this job's.
      if (meta.run_instance !== ref.run_instance) return missingHealth(ref, "run_instance_mismatch", meta.run_instance);
      const memo = readOutcome(p, meta.run_instance);
      if (memo !== null) return memo;

      const now = clock();
      let prog = readJobProgress(p.progress);
      if (prog === null || prog.run_instance !== meta.run_instance) prog = initialProgress(meta);
      const pid = meta.pid ?? readIntFile(p.pid);
      const pgid = meta.pgid ?? pid;
      let rc = readIntFile(p.rc);
      let alive = false;
      if (rc === null) {
        alive = await jobAlive(meta, p);
        // It may have exited between reading rc and looking at the process.
        if (!alive) rc = readIntFile(p.rc);
      }
      const logSt = statQuiet(p.log);
      const logBytes = logSt?.size ?? 0;
      const capped = logBytes >= meta.max_log_bytes;
      const base: JobHealth = {
        job_id: ref.job_id,
        provider: ref.provider,
        run_instance: meta.run_instance,
        state: "healthy",
        reason_code: null,
        exit_code: rc,
        pid,
        worktree: meta.worktree,
        mutation_count: prog.mutation_count,
        log_bytes: logBytes,
        cpu_time_sec: prog.cpu_sec,
        pid_age_sec: Math.max(0, (now - startMono(meta)) / 1000),
        // Since the log last grew as observed by checks (never the file's mtime against now).
        log_age_sec: Math.max(0, (now - prog.last_progress_at_ms) / 1000),
        started_at: meta.started_at,
        finished_at: null,
      };

      if (!alive) {
        if (rc === null && pid === null && now - startMono(meta) < LAUNCH_GRACE_MS) return { ...base, state: "launching", reason_code: null };
        const rcSt = statQuiet(p.rc);
        const finishedAt = rcSt ? iso(rcSt.mtimeMs) : iso(Date.now());
        let h: JobHealth;
        if (prog.stop_requested_at_ms !== null) h = { ...base, state: "stopped", reason_code: "stopped" };
        else if (prog.timed_out_at_ms !== null) h = { ...base, state: "timed_out", reason_code: "max_runtime_exceeded" };
        else if (rc === null) h = { ...base, state: "exited_err", reason_code: "runner_job_lost" };
        else {
          let changed: boolean | null = null;
          let mutations = prog.mutation_count;
          if (rc === 0) {
            const probe = await probeWorktree(meta.worktree, meta.worktree_toplevel);
            changed = probe.ok ? probe.signature !== meta.signature_at_start : null;
            mutations = await mutationCount(meta, probe);
          }
          const verdict = classifyExit({ exit_code: rc, worktree_changed: changed, quota_in_log: rc !== 0 && logTailMentionsQuota(p.log), log_capped: capped });
          h = { ...base, ...verdict, mutation_count: mutations };
        }
        h = { ...h, finished_at: finishedAt, pid_age_sec: Math.max(0, (Date.parse(finishedAt) - meta.started_at_ms) / 1000) };
        // A lost job is not memoized: a wrapper whose pid was never recorded may still write its rc.
        if (h.reason_code !== "runner_job_lost") writeOutcome(p, h);
        return h;
      }

      // Running.
      if (prog.timed_out_at_ms !== null) {
        if (pgid !== null && now - prog.timed_out_at_ms > graceMs && (await groupIsOurs(meta, pgid))) signalGroup(pgid, "SIGKILL");
        return { ...base, state: "timed_out", reason_code: "max_runtime_exceeded" };
      }
      if (overRuntime(now, startMono(meta), o.max_runtime_minutes) && pgid !== null) {
        writeJobProgress(p.progress, { ...prog, timed_out_at_ms: now });
        if (await groupIsOurs(meta, pgid)) {
          signalGroup(pgid, "SIGTERM");
          killLater(pgid, meta, graceMs);
        }
        return { ...base, state: "timed_out", reason_code: "max_runtime_exceeded" };
      }

      const cpu = pgid !== null ? await groupCpuSeconds(pgid) : prog.cpu_sec;
      const moved = madeProgress({ at_ms: prog.observed_at_ms, log_bytes: prog.log_bytes, cpu_sec: prog.cpu_sec }, { at_ms: now, log_bytes: logBytes, cpu_sec: cpu });
      let progressed = moved.log || moved.cpu;
      let signature = prog.signature;
      let mutations = prog.mutation_count;
      if (!progressed || o.probe_worktree === "always") {
        const probe = await probeWorktree(meta.worktree, meta.worktree_toplevel);
        if (probe.ok) {
          if (probe.signature !== prog.signature) progressed = true;
          signature = probe.signature;
          mutations = await mutationCount(meta, probe);
        }
      }
      const next: JobProgress = {
        ...prog,
        observed_at_ms: now,
        last_progress_at_ms: progressed ? now : prog.last_progress_at_ms,
        log_bytes: logBytes,
        cpu_sec: cpu,
        signature,
        mutation_count: mutations,
      };
      writeJobProgress(p.progress, next);
      const h: JobHealth = { ...base, cpu_time_sec: cpu, mutation_count: mutations };
      if (isStalled(now, next.last_progress_at_ms, o.stall_minutes)) return { ...h, state: "stalled", reason_code: "stalled" };
      if (logBytes === 0 && now - startMono(meta) < FIRST_OUTPUT_GRACE_MS) return { ...h, state: "launching" };
      return { ...h, state: "healthy", reason_code: prog.stop_requested_at_ms !== null ? "stop_requested" : capped ? "log_size_capped" : null };
    },

    async stop(ref: JobRef, so: { grace_ms?: number } = {}): Promise<{ stopped: boolean }> {
      const p = pathsOf(ref);
      const meta = readJobMeta(p.meta);
      if (meta === null || meta.run_instance !== ref.run_instance) return { stopped: false };
      const pgid = meta.pgid ?? readIntFile(p.pid);
      if (pgid === null || !(await groupIsOurs(meta, pgid))) return { stopped: false };
      if ((await groupMembers(pgid)).length === 0) return { stopped: false };
      const prog = readJobProgress(p.progress);
      const base = prog !== null && prog.run_instance === meta.run_instance ? prog : initialProgress(meta);
      // An agent that already exited keeps its exit as the verdict; only its leftovers are killed.
      const exited = existsSync(p.rc);
      if (!exited && base.stop_requested_at_ms === null && base.timed_out_at_ms === null) writeJobProgress(p.progress, { ...base, stop_requested_at_ms: clock() });
      signalGroup(pgid, "SIGTERM");
      if (!(await waitGroupGone(pgid, so.grace_ms ?? graceMs, "SIGTERM"))) {
        signalGroup(pgid, "SIGKILL");
        await waitGroupGone(pgid, FINAL_KILL_WAIT_MS);
      }
      return { stopped: true };
    },

    async prune(): Promise<{ checked: number; pruned: number }> {
      let checked = 0;
      let pruned = 0;
      for (const ref of runner.listJobs()) {
        const p = pathsOf(ref);
        const pid = readIntFile(p.pid);
        if (pid === null) continue;
        checked++;
        const meta = readJobMeta(p.meta);
        if (!(await processAlive(pid, meta?.pid_start ?? null))) {
          removeQuiet(p.pid);
          pruned++;
        }
      }
      // Pid files whose meta is gone or unreadable are pruned too when dead.
      for (const provider of listDirs(logDir)) {
        for (const f of listFiles(path.join(logDir, provider), ".pid")) {
          const job = f.slice(0, -".pid".length);
          if (existsSync(path.join(logDir, provider, `${job}.meta.json`))) continue;
          const pidPath = path.join(logDir, provider, f);
          const pid = readIntFile(pidPath);
          checked++;
          if (pid === null || !(await processAlive(pid, null))) {
            removeQuiet(pidPath);
            pruned++;
          }
        }
      }
      return { checked, pruned };
    },

    async readContract(ref: JobRef): Promise<ContractSource> {
      const p = pathsOf(ref);
      const meta = readJobMeta(p.meta);
      if (meta === null) return { found: false, reason_code: "contract_missing", detail: `no job ${ref.job_id} under ${p.dir}` };
      if (meta.run_instance !== ref.run_instance) {
        return { found: false, reason_code: "run_instance_mismatch", detail: `job files belong to run ${meta.run_instance}, not ${ref.run_instance}` };
      }
      return readContractSource(meta.contract_file, p.log);
    },

    onExit(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },

    async livePids(): Promise<number[]> {
      const pids = new Set<number>();
      for (const ref of runner.listJobs()) {
        const p = pathsOf(ref);
        const pid = readIntFile(p.pid);
        if (pid === null) continue;
        if (await processAlive(pid, readJobMeta(p.meta)?.pid_start ?? null)) pids.add(pid);
      }
      return [...pids].sort((a, b) => a - b);
    },

    listJobs(): JobRef[] {
      const out: JobRef[] = [];
      for (const provider of listDirs(logDir)) {
        if (!isValidProviderName(provider)) continue;
        for (const f of listFiles(path.join(logDir, provider), ".meta.json")) {
          const meta = readJobMeta(path.join(logDir, provider, f));
          if (meta !== null && meta.provider === provider && `${meta.job_id}.meta.json` === f) {
            out.push({ job_id: meta.job_id, provider, run_instance: meta.run_instance });
          }
        }
      }
      return out;
    },

    findJob(jobId: string, provider?: string): JobRef | null {
      assertJobId(jobId);
      let best: { ref: JobRef; at: number } | null = null;
      for (const prov of provider !== undefined ? [provider] : listDirs(logDir)) {
        if (!isValidProviderName(prov)) continue;
        const meta = readJobMeta(jobPaths(logDir, prov, jobId).meta);
        if (meta !== null && (best === null || meta.started_at_ms > best.at)) {
          best = { ref: { job_id: jobId, provider: prov, run_instance: meta.run_instance }, at: meta.started_at_ms };
        }
      }
      return best?.ref ?? null;
    },

    meta(ref: JobRef): JobMeta | null {
      const m = readJobMeta(pathsOf(ref).meta);
      return m !== null && m.run_instance === ref.run_instance ? m : null;
    },

    paths: pathsOf,
  };
  return runner;
}

function listDirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
}

function listFiles(dir: string, suffix: string): string[] {
  try {
    return readdirSync(dir)
      .filter((n) => n.endsWith(suffix) && statSync(path.join(dir, n)).isFile())
      .sort();
  } catch {
    return [];
  }
}
