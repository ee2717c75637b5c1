import { Controller, type RunEnd } from "../../src/controller/controller.js";
import type { CancelTimer, Clock, ControllerDeps, ControllerFiles, Workspace } from "../../src/controller/ports.js";
import type { Contract, Outcome, Phase, WaveEvent, WavePolicy, WaveState } from "../../src/core/index.js";
import { fold, initialState } from "../../src/core/index.js";
import type { JobState } from "../../src/core/status.js";
import type { RunnerReason } from "../../src/core/reasons.js";
import type { ContractSource, JobHealth, JobRef, JobSpec, RunnerPort, StartedJob } from "../../src/runner/port.js";
import { missingHealth } from "../../src/runner/port.js";
import type { TrackerPort } from "../../src/tracker/port.js";
import { Ledger, T0, implContract, reviewContract, type LedgerOpts } from "../helpers/events.js";

// The controller's world in memory: a simulated clock, an in-memory store, a runner whose jobs
// exit when the test says, and a tracker that knows nothing. Nothing spawns and nothing sleeps:
// time moves only when the test advances the clock (XState's SimulatedClock is the model).

/** Let every pending promise chain of the controller run (it only ever awaits these fakes). */
export async function settle(rounds = 30): Promise<void> {
  for (let i = 0; i < rounds; i += 1) await new Promise<void>((r) => setImmediate(r));
}

export class SimClock implements Clock {
  private ms: number;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  private nextId = 0;

  constructor(start = T0) {
    this.ms = Date.parse(start);
  }

  nowMs(): number {
    return this.ms;
  }

  nowIso(): string {
    return new Date(this.ms).toISOString();
  }

  setTimer(fn: () => void, ms: number): CancelTimer {
    const id = (this.nextId += 1);
    this.timers.set(id, { at: this.ms + Math.max(0, ms), fn });
    return () => void this.timers.delete(id);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Move time forward by `ms`, firing each timer at its own time and letting the loop run after each. */
  async advance(ms: number): Promise<void> {
    const until = this.ms + ms;
    for (;;) {
      await settle();
      let next: [number, { at: number; fn: () => void }] | null = null;
      for (const t of this.timers) if (t[1].at <= until && (next === null || t[1].at < next[1].at)) next = t;
      if (next === null) break;
      this.timers.delete(next[0]);
      this.ms = Math.max(this.ms, next[1].at);
      next[1].fn();
    }
    this.ms = until;
    await settle();
  }
}

// ---------------------------------------------------------------------------------------------

export class MemFiles implements ControllerFiles {
  readonly events: WaveEvent[] = [];
  snapshot: WaveState | null = null;
  /** Held leases ("<item>+<attempt>") and the controller generation that holds each. */
  readonly leases = new Map<string, number>();
  /** Which controller process is writing now (World bumps it on restart). */
  generation = 1;
  readonly claims = new Set<string>();
  /** Items another live wave holds: claim() refuses them. */
  readonly claimedElsewhere = new Map<string, string>();
  readonly prompts = new Map<string, string>();
  readonly outcomes = new Map<string, Outcome>();
  readonly pids = new Set<number>();
  lockOurs = true;
  liveExec = 0;
  execLockCalls = 0;

  /** How many of `events` are durable: the controller writes at once and syncs in groups. */
  durable = 0;
  syncs = 0;
  /** Effects seen while their event was not durable yet (must stay empty: the write-ahead rule). */
  readonly early: string[] = [];

  append(e: WaveEvent): void {
    this.write(e);
    this.sync();
  }
  write(e: WaveEvent): void {
    this.events.push(e);
  }
  /** The next sync fails with this error, and the ledger is cut back to what was durable. */
  failNextSync: Error | null = null;
  sync(): void {
    if (this.durable === this.events.length) return;
    const fail = this.failNextSync;
    if (fail !== null) {
      this.failNextSync = null;
      this.events.length = this.durable;
      throw fail;
    }
    this.syncs += 1;
    this.durable = this.events.length;
  }
  /** Record an effect that needs `pred`'s event durable. */
  needsDurable(what: string, pred: (e: WaveEvent) => boolean): void {
    const i = this.events.findIndex(pred);
    if (i >= this.durable) this.early.push(what);
  }
  writeSnapshot(s: WaveState): void {
    this.snapshot = s;
  }
  acquireLease(itemId: string, attempt: number): { ok: true; key: string } {
    this.leases.set(`${itemId}+${attempt}`, this.generation);
    return { ok: true, key: `w/${itemId}+attempt${attempt}` };
  }
  releaseLease(itemId: string, attempt: number): void {
    this.leases.delete(`${itemId}+${attempt}`);
  }
  claim(itemId: string): { ok: true } | { ok: false; byWave: string } {
    const other = this.claimedElsewhere.get(itemId);
    if (other !== undefined) return { ok: false, byWave: other };
    this.claims.add(itemId);
    return { ok: true };
  }
  releaseClaim(itemId: string): void {
    this.claims.delete(itemId);
  }
  writePrompt(itemId: string, phase: Phase, attempt: number, text: string): string {
    const p = this.promptPath(itemId, phase, attempt);
    this.prompts.set(p, text);
    return p;
  }
  promptPath(itemId: string, phase: Phase, attempt: number): string {
    return `/mem/prompts/${itemId}.${phase}.attempt${attempt}.prompt`;
  }
  contractPath(itemId: string, phase: Phase, attempt: number): string {
    return `/mem/contracts/${itemId}.${phase}.attempt${attempt}.contract.json`;
  }
  outcomePath(itemId: string, phase: Phase, attempt: number): string {
    return `/mem/outcomes/${itemId}.${phase}.attempt${attempt}.outcome.json`;
  }
  writeOutcome(path: string, outcome: Outcome): void {
    this.needsDurable(`outcome ${path}`, (e) => "outcome_path" in e && e.outcome_path === path);
    this.outcomes.set(path, outcome);
  }
  registerPid(rec: { pid: number }): void {
    this.pids.add(rec.pid);
  }
  removePid(pid: number): void {
    this.pids.delete(pid);
  }
  heartbeat(): boolean {
    return this.lockOurs;
  }
  liveExecPids(): Promise<number> {
    return Promise.resolve(this.liveExec);
  }
  async withExecLock<T>(fn: () => Promise<T>): Promise<T> {
    this.execLockCalls += 1;
    return fn();
  }
}

// ---------------------------------------------------------------------------------------------

export interface FakeJob {
  spec: JobSpec | null;
  ref: JobRef;
  pid: number;
  started_at: string;
  state: JobState;
  exit_code: number | null;
  reason_code: RunnerReason | null;
  contract: Contract | null;
  /** Seen writing output at this time (ms); a stall is measured from it. */
  last_output_ms: number;
  stopped: boolean;
  worktree_end?: JobHealth["worktree_end"];
}

export interface ExitOpts {
  exit_code?: number;
  contract?: Contract | null;
  reason_code?: RunnerReason | null;
  state?: JobState;
  /** What the runner saw of the worktree at a clean exit (the built-in runner's wrapper look). */
  worktree_end?: JobHealth["worktree_end"];
}

/**
 * A runner whose jobs run until the test ends them. Health follows the simulated clock: a job
 * that printed nothing for stall_minutes is `stalled`, one older than max_runtime is `timed_out`.
 */
export class FakeRunner implements RunnerPort {
  readonly jobs = new Map<string, FakeJob>();
  readonly starts: JobSpec[] = [];
  readonly stops: string[] = [];
  /** Every start and stop in order, as "start <run_instance>" / "stop <run_instance>". */
  readonly calls: string[] = [];
  /** Set by a test to play a runner that reads the agent's stream. */
  signals?: RunnerPort["signals"];
  /** Every health check, as "<clock ms> <run_instance>". */
  readonly checks: string[] = [];
  /** How many events the ledger held at each stop (set by World), to order stops against events. */
  readonly stopsAtLedgerLength: number[] = [];
  ledgerLength: () => number = () => 0;
  private readonly listeners = new Set<(ref: JobRef, code: number | null) => void>();
  private nextPid = 1000;
  /** Jobs started while this is set never resolve start() (a controller dying mid-start). */
  hangStarts = false;
  failStarts: string | null = null;

  constructor(private readonly clock: Clock) {}

  preflight(provider: string): Promise<{ provider: string; ok: true; reason_code: null; detail: null }> {
    return Promise.resolve({ provider, ok: true, reason_code: null, detail: null });
  }

  /** Called at each start (World checks the dispatch is durable by then). */
  onStart: (spec: JobSpec) => void = () => undefined;

  start(spec: JobSpec): Promise<StartedJob> {
    this.onStart(spec);
    this.starts.push(spec);
    this.calls.push(`start ${spec.run_instance}`);
    if (this.hangStarts) return new Promise(() => undefined);
    if (this.failStarts !== null) return Promise.reject(new Error(this.failStarts));
    const job = this.adopt({ job_id: spec.job_id, provider: spec.provider, run_instance: spec.run_instance }, { spec });
    return Promise.resolve({ pid: job.pid, pgid: job.pid, started_at: job.started_at, log_path: `/mem/logs/${spec.run_instance}.log` });
  }

  /** A job this runner knows without having started it in this process (a predecessor's job). */
  adopt(ref: JobRef, o: { spec?: JobSpec; state?: JobState; started_at?: string } = {}): FakeJob {
    const job: FakeJob = {
      spec: o.spec ?? null,
      ref,
      pid: (this.nextPid += 1),
      started_at: o.started_at ?? this.clock.nowIso(),
      state: o.state ?? "healthy",
      exit_code: null,
      reason_code: null,
      contract: null,
      last_output_ms: this.clock.nowMs(),
      stopped: false,
    };
    this.jobs.set(ref.run_instance, job);
    return job;
  }

  check(ref: JobRef, opts: { stall_minutes: number; max_runtime_minutes: number }): Promise<JobHealth> {
    this.checks.push(`${this.clock.nowMs()} ${ref.run_instance}`);
    const job = this.jobs.get(ref.run_instance);
    if (!job) return Promise.resolve(missingHealth(ref, "job_not_found"));
    const now = this.clock.nowMs();
    if (job.state === "healthy") {
      if (now - Date.parse(job.started_at) >= opts.max_runtime_minutes * 60_000) {
        job.state = "timed_out";
        job.reason_code = "max_runtime_exceeded";
      } else if (now - job.last_output_ms >= opts.stall_minutes * 60_000) {
        job.state = "stalled";
        job.reason_code = "stalled";
      }
    }
    return Promise.resolve({
      ...missingHealth(ref, job.reason_code),
      state: job.state,
      exit_code: job.exit_code,
      pid: job.pid,
      started_at: job.started_at,
      finished_at: null,
      ...(job.worktree_end === undefined ? {} : { worktree_end: job.worktree_end }),
    });
  }

  stop(ref: JobRef): Promise<{ stopped: boolean }> {
    this.stops.push(ref.run_instance);
    this.calls.push(`stop ${ref.run_instance}`);
    this.stopsAtLedgerLength.push(this.ledgerLength());
    const job = this.jobs.get(ref.run_instance);
    if (job && !job.stopped) {
      job.stopped = true;
      if (job.state === "healthy") job.state = "stopped";
    }
    return Promise.resolve({ stopped: job !== undefined });
  }

  prune(): Promise<{ checked: number; pruned: number }> {
    return Promise.resolve({ checked: 0, pruned: 0 });
  }

  readContract(ref: JobRef): Promise<ContractSource> {
    const c = this.jobs.get(ref.run_instance)?.contract ?? null;
    if (c === null) return Promise.resolve({ found: false, reason_code: "contract_missing", detail: "no contract" });
    return Promise.resolve({ found: true, source: "file", text: JSON.stringify(c) });
  }

  onExit(listener: (ref: JobRef, exitCode: number | null) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  livePids(): Promise<number[]> {
    return Promise.resolve([...this.jobs.values()].filter((j) => j.state === "healthy").map((j) => j.pid));
  }

  /** The job of an item's current phase (the newest started one). */
  jobOf(item: string, phase: Phase = "implement"): FakeJob {
    const all = [...this.jobs.values()].filter((j) => j.ref.job_id === (phase === "implement" ? item : `${item}-review`));
    const job = all.at(-1);
    if (!job) throw new Error(`no ${phase} job for ${item}`);
    return job;
  }

  /** End a job now; `notify: false` for a job this process did not launch (re-attached: polled). */
  exit(job: FakeJob, o: ExitOpts = {}, notify = true): void {
    job.exit_code = o.exit_code ?? 0;
    job.state = o.state ?? (job.exit_code === 0 ? "exited_ok" : "exited_err");
    job.reason_code = o.reason_code ?? null;
    job.contract = o.contract === undefined ? defaultContract(job) : o.contract;
    if (o.worktree_end !== undefined) job.worktree_end = o.worktree_end;
    if (notify) for (const l of this.listeners) l(job.ref, job.exit_code);
  }

  /** The agent prints something: its stall timer starts over. */
  output(job: FakeJob): void {
    job.last_output_ms = this.clock.nowMs();
  }
}

function defaultContract(job: FakeJob): Contract {
  const item = job.ref.job_id.replace(/-review$/, "");
  return job.ref.job_id.endsWith("-review") ? reviewContract(item, "APPROVED") : implContract(item, "completed");
}

const noTracker: TrackerPort = {
  type: "none",
  show: (id) => Promise.resolve({ found: false, reason_code: "item_not_found", detail: id }),
  ready: () => Promise.resolve([]),
  markInProgress: () => Promise.resolve({ ok: true, reason_code: null }),
  comment: () => Promise.resolve({ ok: true, reason_code: null }),
  close: () => Promise.resolve({ ok: true, reason_code: null }),
  versionCheck: () => Promise.resolve({ ok: true, reason_code: null, detail: "" }),
};

// ---------------------------------------------------------------------------------------------

export const TIMING = {
  stall_minutes: 10,
  max_runtime_minutes: 60,
  exec_process_cap: 50,
  health_interval_ms: 30_000,
  reattach_poll_ms: 500,
  heartbeat_ms: 30_000,
  pause_grace_ms: 0,
};

export interface WorldOpts {
  items?: LedgerOpts["items"];
  policy?: Partial<WavePolicy>;
  timing?: Partial<typeof TIMING>;
  /** Workspace members over the in-memory default (auto-commit, diff). */
  workspace?: Partial<Workspace>;
  /** The tracker (default: one that knows no item, so prompts use the wave's titles). */
  tracker?: TrackerPort;
}

/** One wave, one controller process. `restart()` gives the next process the same store. */
export class World {
  readonly clock: SimClock;
  readonly files: MemFiles;
  readonly runner: FakeRunner;
  readonly controller: Controller;
  readonly log: string[] = [];
  private runs = 0;
  private ended: RunEnd | null = null;
  private failure: unknown = null;
  private running: Promise<RunEnd> | null = null;

  constructor(
    readonly opts: WorldOpts,
    prev?: { files: MemFiles; clock: SimClock },
  ) {
    this.clock = prev?.clock ?? new SimClock();
    this.files = prev?.files ?? new MemFiles();
    if (prev) this.files.generation += 1;
    this.runner = new FakeRunner(this.clock);
    this.runner.ledgerLength = () => this.files.events.length;
    this.runner.onStart = (spec) =>
      this.files.needsDurable(`start ${spec.run_instance}`, (e) => e.event === "item_dispatched" && e.run_instance === spec.run_instance);
    let state: WaveState;
    if (prev) state = fold(this.files.events);
    else {
      const l = new Ledger({
        items: opts.items ?? ["it-1"],
        policy: { retry_chain: ["prov-a", "prov-b", "blocked"], ...opts.policy },
        start: this.clock.nowIso(),
      });
      const [created] = l.events;
      if (created?.event !== "wave_created") throw new Error("unreachable");
      this.files.append(created);
      state = initialState(created);
    }
    this.controller = new Controller(this.deps(), state);
  }

  private deps(): ControllerDeps {
    return {
      files: this.files,
      runner: this.runner,
      tracker: this.opts.tracker ?? noTracker,
      workspace: {
        resolve: (id) => Promise.resolve({ ok: true, path: `/mem/worktrees/${id}`, base_commit: "base0" }),
        head: () => Promise.resolve("head1"),
        ...this.opts.workspace,
      },
      contracts: { validate: (text) => ({ ok: true, contract: JSON.parse(text) as Contract }) },
      clock: this.clock,
      newRunInstance: () => `run-${this.files.events.length}-${(this.runs += 1)}`,
      templates: {},
      log: (l) => void this.log.push(l),
      timing: { ...TIMING, ...this.opts.timing },
    };
  }

  /** The next controller process after this one died: same store and clock, a fresh runner. */
  restart(): World {
    return new World(this.opts, { files: this.files, clock: this.clock });
  }

  /** What run-wave does before the loop (preflight, wave_started or wave_resumed), then run. */
  async start(mode: "start" | "resume" = "start"): Promise<void> {
    const providers = Object.fromEntries(this.state.policy.retry_chain.filter((p) => p !== "blocked").map((p) => [p, { ok: true, reason_code: null }]));
    this.controller.session.apply({ event: "preflight_recorded", providers });
    this.controller.session.apply(
      mode === "start" ? { event: "wave_started", controller_pid: 1, host: "h" } : { event: "wave_resumed", controller_pid: 2, host: "h" },
    );
    this.running = this.controller.run();
    void this.running.then(
      (end) => void (this.ended = end),
      (err: unknown) => void (this.failure = err),
    );
    await settle();
  }

  get state(): WaveState {
    return this.controller.state;
  }

  get end(): RunEnd | null {
    if (this.failure !== null) throw this.failure instanceof Error ? this.failure : new Error("controller.run() rejected with a non-Error");
    return this.ended;
  }

  item(id: string): WaveState["items"][number] {
    const it = this.state.items.find((i) => i.beads_id === id);
    if (!it) throw new Error(`no item ${id}`);
    return it;
  }

  /** The events of this wave of one type, in ledger order. */
  eventsOf<K extends WaveEvent["event"]>(type: K): Extract<WaveEvent, { event: K }>[] {
    return this.files.events.filter((e): e is Extract<WaveEvent, { event: K }> => e.event === type);
  }

  /** Ledger order as "event item phase attempt" lines, for the assertions that care about order. */
  story(from = 0): string[] {
    return this.files.events.slice(from).map((e) => {
      const o = e as { item_id?: string; phase?: string; attempt?: number };
      return [e.event, o.item_id, o.phase, o.attempt].filter((x) => x !== undefined).join(" ");
    });
  }
}
