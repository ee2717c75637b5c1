import type {
  Contract,
  DraftEvent,
  Finding,
  ImplementContract,
  ImplementStatus,
  ItemReason,
  ItemSeed,
  JobFinished,
  JobState,
  Phase,
  QuotaHandling,
  ReviewContract,
  ReviewVerdict,
  RunnerReason,
  TrackerReason,
  WaveEvent,
  WaveReason,
  WavePolicy,
} from "../../src/core/index.js";

// A builder of wave ledgers for the core tests. It numbers and times events the way the shell does
// (seq strictly increasing, `at` from a simulated clock) and remembers each item's current
// dispatch, so a test reads as the story of a wave: l.start().implement("bd-a1", "opencode", "completed").

export const T0 = "2026-01-01T00:00:00.000Z";
export const WAVE_ID = "wave-test";
export const WAVE_DIR = "/tmp/dx-batch/waves/wave-test";

export const DEFAULT_POLICY: WavePolicy = {
  max_parallel: 3,
  max_attempts: 3,
  require_review: true,
  retry_chain: ["opencode", "cc-glm", "blocked"],
  review_provider: null,
  review_must_differ: false,
  provider_cooldown_minutes: 15,
  provider_max_parallel: {},
};

export function implContract(item: string, status: ImplementStatus, extra: Partial<ImplementContract> = {}): ImplementContract {
  return {
    phase: "implement",
    beads_id: item,
    status,
    artifacts: { files_changed: status === "no_op" ? [] : ["src/a.ts"], commits: [] },
    summary: `implement ${status}`,
    timestamp: T0,
    ...extra,
  };
}

export function reviewContract(item: string, verdict: ReviewVerdict, findings?: Finding[], extra: Partial<ReviewContract> = {}): ReviewContract {
  return {
    phase: "review",
    beads_id: item,
    verdict,
    findings: findings ?? (verdict === "APPROVED" ? [] : [{ type: "major", message: `fix ${item}`, file: "src/a.ts", line: 3 }]),
    summary: `review ${verdict}`,
    timestamp: T0,
    ...extra,
  };
}

export interface FinishOpts {
  state?: JobState;
  exit_code?: number | null;
  runner_reason?: RunnerReason | null;
  /** undefined: no contract (contract_error defaults to a message). */
  contract?: Contract | null;
  contract_error?: string | null;
  duration_sec?: number | null;
  /** What the runner read from the agent's stream (issue #11). */
  usage?: JobFinished["usage"];
  cli_error?: string | null;
}

export interface DispatchOpts {
  attempt?: number;
  chain_index?: number;
  quota?: QuotaHandling;
  skipped?: string[];
  run_instance?: string;
  base_commit?: string | null;
}

interface Current {
  phase: Phase;
  attempt: number;
  provider: string;
  run_instance: string;
  chain_index: number;
  started_at: string | null;
}

export interface LedgerOpts {
  items?: (string | ItemSeed)[];
  policy?: Partial<WavePolicy>;
  start?: string;
}

export const seed = (id: string, depends_on: string[] = []): ItemSeed => ({ id, title: `title of ${id}`, depends_on });

export class Ledger {
  readonly events: WaveEvent[] = [];
  readonly policy: WavePolicy;
  private seq = 0;
  private clock: number;
  private readonly current = new Map<string, Current>();
  private readonly lastAttempt = new Map<string, number>();
  private runs = 0;

  constructor(opts: LedgerOpts = {}) {
    this.clock = Date.parse(opts.start ?? T0);
    this.policy = { ...DEFAULT_POLICY, ...opts.policy };
    const items = (opts.items ?? ["bd-a1"]).map((i) => (typeof i === "string" ? seed(i) : i));
    this.push({
      event: "wave_created",
      wave_id: WAVE_ID,
      wave_dir: WAVE_DIR,
      // The resolved configuration as the shell records it; the reducer reads only `policy`.
      config: {
        artifact_dir: "/tmp/dx-batch",
        runner_log_dir: "/tmp/dx-runner",
        workspace_root: "/tmp/agents",
        allowed_prefixes: [],
        protected_paths: [],
        repo: null,
        base: "HEAD",
        max_parallel: this.policy.max_parallel,
        max_attempts: this.policy.max_attempts,
        stall_minutes: 15,
        lease_ttl_minutes: 120,
        exec_process_cap: 60,
        require_review: this.policy.require_review,
        max_runtime_minutes: 120,
        review_must_differ: this.policy.review_must_differ,
        provider_cooldown_minutes: this.policy.provider_cooldown_minutes,
        max_log_mb: 50,
        retry_chain: [...this.policy.retry_chain],
        review_provider: this.policy.review_provider,
        runner: { type: "builtin" },
        tracker: { type: "none" },
        providers: {},
        prompts: {},
      },
      policy: this.policy,
      items,
    });
  }

  /** The time the next event will carry. */
  now(): string {
    return new Date(this.clock).toISOString();
  }

  advance(minutes: number): this {
    this.clock += minutes * 60_000;
    return this;
  }

  /** Append any event; seq and at are filled in like the shell does. Each event moves the clock 1 s. */
  push(draft: DraftEvent): this {
    this.seq += 1;
    this.events.push({ ...draft, seq: this.seq, at: this.now() });
    this.clock += 1000;
    return this;
  }

  /** true: passed; a string: failed with that reason code. */
  preflight(providers: Record<string, true | RunnerReason>): this {
    const out: Record<string, { ok: boolean; reason_code: RunnerReason | null }> = {};
    for (const [p, v] of Object.entries(providers)) out[p] = v === true ? { ok: true, reason_code: null } : { ok: false, reason_code: v };
    return this.push({ event: "preflight_recorded", providers: out });
  }

  start(): this {
    return this.push({ event: "wave_started", controller_pid: 4242, host: "test-host" });
  }

  resume(): this {
    return this.push({ event: "wave_resumed", controller_pid: 4343, host: "test-host" });
  }

  pause(reason_code: WaveReason = "wave_paused_signal"): this {
    return this.push({ event: "wave_paused", reason_code });
  }

  fail(reason_code: WaveReason, error = `wave failed: ${reason_code}`): this {
    return this.push({ event: "wave_failed", reason_code, error });
  }

  cancel(reason_code: WaveReason = "wave_cancelled"): this {
    return this.push({ event: "wave_cancelled", reason_code });
  }

  /**
   * Dispatch a phase. Defaults follow the retry policy: an implement is attempt last+1 at the
   * provider's first chain position; a review carries the current implement attempt.
   */
  dispatch(item: string, phase: Phase, provider: string, o: DispatchOpts = {}): this {
    const prev = this.current.get(item);
    const last = this.lastAttempt.get(item) ?? 0;
    const attempt = o.attempt ?? (phase === "implement" ? last + 1 : last);
    const chainPos = this.policy.retry_chain.indexOf(provider);
    const chain_index = o.chain_index ?? (phase === "implement" ? Math.max(chainPos, 0) : (prev?.chain_index ?? 0));
    this.runs += 1;
    const run_instance = o.run_instance ?? `ri-${item}-${phase}-${attempt}-${this.runs}`;
    this.lastAttempt.set(item, attempt);
    this.current.set(item, { phase, attempt, provider, run_instance, chain_index, started_at: null });
    return this.push({
      event: "item_dispatched",
      item_id: item,
      phase,
      attempt,
      provider,
      chain_index,
      run_instance,
      lease_key: `${item}+attempt${attempt}`,
      worktree: `/tmp/agents/${item}/repo`,
      base_commit: o.base_commit === undefined ? "base0001" : o.base_commit,
      quota: o.quota ?? null,
      skipped: o.skipped ?? [],
    });
  }

  jobStarted(item: string, o: { run_instance?: string } = {}): this {
    const c = this.cur(item);
    c.started_at = this.now();
    return this.push({
      event: "job_started",
      item_id: item,
      phase: c.phase,
      attempt: c.attempt,
      provider: c.provider,
      run_instance: o.run_instance ?? c.run_instance,
      pid: 1000 + this.seq,
      pgid: 1000 + this.seq,
      started_at: c.started_at,
      log_path: `/tmp/dx-runner/${c.provider}/${item}.log`,
    });
  }

  finished(item: string, o: FinishOpts = {}, run_instance?: string): this {
    const c = this.cur(item);
    const contract = o.contract === undefined ? null : o.contract;
    return this.push({
      event: "job_finished",
      item_id: item,
      phase: c.phase,
      attempt: c.attempt,
      provider: c.provider,
      run_instance: run_instance ?? c.run_instance,
      started_at: c.started_at,
      state: o.state ?? "exited_ok",
      exit_code: o.exit_code === undefined ? 0 : o.exit_code,
      runner_reason: o.runner_reason ?? null,
      contract,
      contract_error: o.contract_error === undefined ? (contract === null ? "no contract found" : null) : o.contract_error,
      outcome_path: outcomePath(item, c.phase, c.attempt),
      duration_sec: o.duration_sec === undefined ? 60 : o.duration_sec,
      ...(o.usage !== undefined ? { usage: o.usage } : {}),
      ...(o.cli_error !== undefined ? { cli_error: o.cli_error } : {}),
    });
  }

  attemptFailed(item: string, reason_code: ItemReason, error = `attempt failed: ${reason_code}`, run_instance?: string): this {
    const c = this.cur(item);
    return this.push({
      event: "attempt_failed",
      item_id: item,
      phase: c.phase,
      attempt: c.attempt,
      provider: c.provider,
      run_instance: run_instance ?? c.run_instance,
      reason_code,
      error,
      outcome_path: outcomePath(item, c.phase, c.attempt),
    });
  }

  settled(item: string, status: "blocked" | "failed", reason_code: ItemReason, error = `settled: ${reason_code}`): this {
    return this.push({ event: "item_settled", item_id: item, status, reason_code, error });
  }

  trackerError(item: string, op: "in_progress" | "comment" | "close", reason_code: TrackerReason = "tracker_command_failed"): this {
    return this.push({ event: "tracker_error", item_id: item, op, reason_code, detail: "bd exited 1" });
  }

  /** dispatch + job_started + job_finished of one implement attempt. */
  implement(item: string, provider: string, result: ImplementStatus | FinishOpts, d: DispatchOpts = {}): this {
    this.dispatch(item, "implement", provider, d).jobStarted(item);
    return this.finished(item, typeof result === "string" ? { contract: implContract(item, result) } : result);
  }

  /** dispatch + job_started + job_finished of one review. */
  review(item: string, provider: string, result: ReviewVerdict | FinishOpts, findings?: Finding[], d: DispatchOpts = {}): this {
    this.dispatch(item, "review", provider, d).jobStarted(item);
    return this.finished(item, typeof result === "string" ? { contract: reviewContract(item, result, findings) } : result);
  }

  runInstance(item: string): string {
    return this.cur(item).run_instance;
  }

  /** `at` of the last event of that name (and item), for expectations that depend on the clock. */
  atOf(name: WaveEvent["event"], item?: string): string {
    for (let i = this.events.length - 1; i >= 0; i -= 1) {
      const e = this.events[i];
      if (e && e.event === name && (item === undefined || ("item_id" in e && e.item_id === item))) return e.at;
    }
    throw new Error(`test ledger: no ${name} event${item === undefined ? "" : ` for ${item}`}`);
  }

  private cur(item: string): Current {
    const c = this.current.get(item);
    if (!c) throw new Error(`test ledger: ${item} was never dispatched`);
    return c;
  }
}

export const outcomePath = (item: string, phase: Phase, attempt: number): string => `${WAVE_DIR}/outcomes/${item}.${phase}.attempt${attempt}.outcome.json`;

/** Freeze a value and everything it holds, so a mutation throws in strict-mode code. */
export function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}
