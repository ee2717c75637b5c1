import { planDispatch, type DispatchIntent } from "../core/plan.js";
import { itemById } from "../core/step.js";
import { openItems } from "../core/census.js";
import { WaveReason } from "../core/reasons.js";
import type { ItemState, WaveState } from "../core/state.js";
import { isTerminalItem } from "../core/status.js";
import { toMs } from "../core/time.js";
import type { TrackerIssue } from "../tracker/port.js";
import { dispatchIntent, startJob } from "./dispatch.js";
import { performEffects } from "./effects.js";
import { checkHealth, finishJob } from "./finish.js";
import type { ControllerDeps, WorktreeResult } from "./ports.js";
import { reattach } from "./reattach.js";
import { WaveSession } from "./session.js";
import type { Shell } from "./shell.js";
import { TrackedJobs } from "./tracked-jobs.js";
import { WorktreeLooks } from "./worktree-looks.js";
import { ReviewDiffs } from "./review-diffs.js";
import { TrackerQueue } from "./tracker-queue.js";
import { DeliveryQueue } from "./delivery-queue.js";
import { stopByOperator } from "./operator-stop.js";

// The imperative shell around the pure core. It sleeps until something happens (a job exits, a
// health check or a cooldown falls due, a signal arrives) and then runs one cycle: finish exited
// jobs, check health, run the cheap doctor checks, plan, dispatch. It never polls on a fixed
// period while it has nothing to do. Its parts live beside it: dispatch.ts (lease → claim →
// worktree → prompt → item_dispatched → start), finish.ts (health and job_finished),
// reattach.ts (resume, SPEC §8) and effects.ts (performing the core's effects).

export type RunEnd =
  | { kind: "completed" }
  | { kind: "paused" }
  | { kind: "cancelled" }
  | { kind: "failed"; reason_code: string }
  | { kind: "lost_lock" }
  /** `start --detach`: the wave was created and handed to a background controller. */
  | { kind: "detached" };

export type ControlSignal = "pause" | "pause_and_stop" | "cancel";

export class Controller {
  readonly session: WaveSession;
  private readonly jobs = new TrackedJobs();
  private readonly tracker: TrackerQueue;
  private readonly delivery: DeliveryQueue;
  private readonly issues = new Map<string, Promise<TrackerIssue>>();
  private readonly shell: Shell;
  private wake: (() => void) | null = null;
  private kicked = false;
  private signal: ControlSignal | null = null;
  private nextHeartbeatMs = 0;
  private wakeAtMs: number | null = null;
  private readonly prefetched = new Map<string, Promise<WorktreeResult | null>>();
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly deps: ControllerDeps,
    initial: WaveState,
  ) {
    this.session = new WaveSession(deps.files, initial, deps.clock, (e, s) => deps.onEvent?.(e, s));
    this.tracker = new TrackerQueue(deps.tracker, (item_id, op, reason_code, detail) => {
      // Recorded, never fatal (SPEC §10); it changes no status, so it has no effects to perform.
      this.session.apply({ event: "tracker_error", item_id, op, reason_code, detail });
    });
    this.delivery = new DeliveryQueue(deps.delivery ?? null, () => this.shell);
    const shell: Shell = {
      deps,
      session: this.session,
      jobs: this.jobs,
      tracker: this.tracker,
      delivery: this.delivery,
      looks: new WorktreeLooks(),
      diffs: new ReviewDiffs(),
      item: (id) => this.item(id),
      issue: (id) => this.issue(id),
      // Write-ahead with group commit: the event is written and folded now, made durable with the
      // others of its group, and only then are its effects performed.
      apply: async (draft) => {
        const effects = this.session.stage(draft);
        await this.session.commit();
        await performEffects(shell, effects);
      },
      record: async (draft) => {
        const effects = this.session.stage(draft);
        if (effects.length === 0) return;
        await this.session.commit();
        await performEffects(shell, effects);
      },
      startJob: (it) => startJob(shell, it),
      cancelling: () => this.signal === "cancel",
    };
    this.shell = shell;
  }

  get state(): WaveState {
    return this.session.state;
  }

  /** Ask the loop to pause, pause and stop jobs, or cancel; handled at the next cycle. */
  request(sig: ControlSignal): void {
    if (this.signal === "cancel") return;
    if (sig === "pause" && this.signal === "pause") this.signal = "pause_and_stop";
    else if (this.signal !== "pause_and_stop" || sig === "cancel") this.signal = sig;
    this.kick();
  }

  kick(): void {
    this.kicked = true;
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Re-attach jobs of active items (resume), then run until the wave stops. */
  async run(): Promise<RunEnd> {
    this.unsubscribe = this.deps.runner.onExit((ref) => {
      if (this.jobs.markExited(ref.run_instance)) this.kick();
    });
    try {
      await reattach(this.shell);
      for (;;) {
        const end = await this.cycle();
        if (end) return end;
        await this.sleep();
      }
    } finally {
      this.unsubscribe?.();
      await this.delivery.drain();
      await this.tracker.drain();
      // Outcomes and approvals were written without waiting for the disk: they are durable before
      // the run ends, so before the wave's terminal event and before its claims are let go.
      await this.deps.files.drainSyncs?.();
      this.session.flush(true);
    }
  }

  /** Second SIGINT: stop every job too (their items are re-checked and retried on resume). */
  async stopAll(): Promise<void> {
    await Promise.all(this.jobs.all().map((j) => this.deps.runner.stop(j.ref)));
  }

  // -------------------------------------------------------------------------------------------

  private async cycle(): Promise<RunEnd | null> {
    this.kicked = false;
    // Jobs that ended together are finished together: each step is its own sync append, so the
    // ledger stays ordered while their checks and contract reads overlap. Jobs that end meanwhile
    // are finished too before anything is dispatched, so their slots are filled in this cycle's
    // dispatch instead of waiting for the whole of it and a cycle of their own (issue #14: a
    // burst of exits, as when the first jobs of a wave end together).
    for (let exited = this.jobs.takeExited(); exited.length > 0; exited = this.jobs.takeExited()) {
      await Promise.all(exited.map((job) => finishJob(this.shell, job, null)));
    }
    await checkHealth(this.shell);

    if (this.signal !== null) return this.handleSignal(this.signal);
    const down = this.deps.runner.unavailable?.() ?? null;
    if (down !== null) {
      // Jobs keep running on their workers; resume re-attaches them once the queue is back.
      this.deps.log(`queue unavailable: ${down}; pausing the wave`);
      if (this.state.status === "running" || this.state.status === "pending") {
        await this.shell.apply({ event: "wave_paused", reason_code: WaveReason.queue_unavailable });
      }
      return { kind: "paused" };
    }

    const now = this.deps.clock.nowMs();
    if (now >= this.nextHeartbeatMs) {
      if (!this.deps.files.heartbeat()) {
        this.deps.log("controller lock taken by another process: stopping without touching the wave");
        return { kind: "lost_lock" };
      }
      this.nextHeartbeatMs = now + this.deps.timing.heartbeat_ms;
    }

    const s = this.state;
    if (s.status === "completed") return this.jobs.size === 0 ? { kind: "completed" } : null;
    if (s.status === "cancelled") return { kind: "cancelled" };
    if (s.status === "paused") return { kind: "paused" };
    if (s.status === "failed") return { kind: "failed", reason_code: s.reason_code };

    const plan = planDispatch(s, this.deps.clock.nowIso());
    this.wakeAtMs = plan.wake_at === null ? null : toMs(plan.wake_at);
    if (plan.intents.length > 0) {
      const end = await this.deps.files.withExecLock(() => this.dispatchWithinCap(plan.intents));
      if (end) return end;
    }
    // An ended item needs its tracker text no more: the cache holds only what may be dispatched
    // again, not every item the wave ever ran.
    for (const id of this.issues.keys()) if (isTerminalItem(this.item(id).status)) this.issues.delete(id);
    // Whatever the cycle staged without waiting (job_started, auto_commit) rides along with the
    // next commit, at the latest a second from now (session.flushDueMs wakes the loop for it);
    // the checkpoint is written if it is due.
    this.session.flush(false);
    return null;
  }

  /** Cheap doctor check before any dispatch (SPEC §8): the exec-saturation guard, then dispatch. */
  private async dispatchWithinCap(intents: readonly DispatchIntent[]): Promise<RunEnd | null> {
    const live = await this.deps.files.liveExecPids();
    if (live > this.deps.timing.exec_process_cap) {
      await this.shell.apply({
        event: "wave_failed",
        reason_code: WaveReason.exec_saturation,
        error: `${live} live agent processes exceed exec_process_cap ${this.deps.timing.exec_process_cap}; running jobs keep running`,
      });
      return { kind: "failed", reason_code: WaveReason.exec_saturation };
    }
    // At the cap exactly, dispatch nothing now. Another wave's job ending wakes nobody here,
    // so look again shortly rather than at the next heartbeat.
    const budget = this.deps.timing.exec_process_cap - live;
    if (budget < intents.length) {
      const recheck = this.deps.clock.nowMs() + this.deps.timing.reattach_poll_ms;
      this.wakeAtMs = this.wakeAtMs === null ? recheck : Math.min(this.wakeAtMs, recheck);
    }
    const chosen = intents.slice(0, Math.max(0, budget));
    // Distinct items, so their dispatches may overlap (git, runner start); every ledger append
    // is synchronous, so events keep their order and each one is whole.
    await Promise.all(chosen.map((intent) => dispatchIntent(this.shell, intent, () => this.takePrefetched(intent.item_id))));
    this.prefetchWorktrees();
    // An intent that ended its item instead of starting a job (worktree, claim or spawn failure)
    // freed its slot, and no job exit will come to wake the loop for it: plan again at once.
    if (chosen.some((i) => isTerminalItem(this.item(i.item_id).status))) this.kick();
    return null;
  }

  /**
   * Resolve (or create) the worktrees of the next items that will be dispatched while the current
   * jobs run, so `git worktree add` is off the path from a job's exit to the next dispatch.
   * Harmless if the item then goes elsewhere: worktrees are never deleted, and a result that is
   * not ok is resolved again at dispatch, after the lease and the claim.
   */
  private prefetchWorktrees(): void {
    const s = this.state;
    for (const id of this.prefetched.keys()) if (itemById(s, id)?.status !== "pending") this.prefetched.delete(id);
    const approved = (id: string) => itemById(s, id)?.status === "approved";
    let budget = s.policy.max_parallel - this.prefetched.size;
    for (const it of openItems(s)) {
      if (budget <= 0) break;
      if (it.status !== "pending" || it.worktree !== null || this.prefetched.has(it.beads_id)) continue;
      if (!it.depends_on.every(approved)) continue;
      this.prefetched.set(it.beads_id, this.resolveEarly(it.beads_id));
      budget -= 1;
    }
  }

  /**
   * One item's worktree, ahead of its dispatch. A checkout found rather than created is also looked
   * at now (`git status`): clean, its first job starts without the runner's own look. Its HEAD is
   * read again at dispatch, and a look whose HEAD moved is dropped (WorktreeLooks.confirm). The
   * item's tracker text is fetched meanwhile (a `bd show` with Beads), so the prompt waits for
   * neither.
   */
  private async resolveEarly(id: string): Promise<WorktreeResult | null> {
    const ws = this.deps.workspace;
    // The cache keeps it for the dispatch; a tracker that cannot answer now is asked again there.
    void this.issue(id).catch(() => undefined);
    try {
      const w = await ws.resolve(id);
      if (w.ok && w.created !== true && ws.look !== undefined) {
        const l = await ws.look(w.path).catch(() => null);
        if (l?.clean === true) this.shell.looks.clean(id, l.head);
      }
      return w;
    } catch {
      return null;
    }
  }

  private takePrefetched(id: string): Promise<WorktreeResult | null> | undefined {
    const early = this.prefetched.get(id);
    this.prefetched.delete(id);
    return early;
  }

  private async sleep(): Promise<void> {
    if (this.kicked) return;
    const now = this.deps.clock.nowMs();
    const candidates = [this.jobs.nextCheckMs(), this.wakeAtMs, this.nextHeartbeatMs, this.session.flushDueMs];
    const next = Math.min(...candidates.filter((x): x is number => x !== null));
    const delay = Math.max(0, Math.min(next - now, 60_000));
    await this.waitFor(delay);
  }

  /** Wait `ms` on the clock, or less if `kick()` wakes the loop first. */
  private waitFor(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const cancel = this.deps.clock.setTimer(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        cancel();
        resolve();
      };
    });
  }

  // -------------------------------------------------------------------------------------------
  // Signals: SIGINT/SIGTERM pause (agents keep running; a second SIGINT stops them), SIGUSR1
  // cancels (stop every job, then `wave_cancelled`).

  private async handleSignal(sig: ControlSignal): Promise<RunEnd> {
    if (sig === "cancel") {
      await this.stopAll();
      await this.shell.apply({ event: "wave_cancelled", reason_code: WaveReason.wave_cancelled });
      for (const j of this.jobs.all()) this.jobs.remove(j.ref.run_instance);
      return { kind: "cancelled" };
    }
    if (this.state.status === "running" || this.state.status === "pending") {
      await this.shell.apply({ event: "wave_paused", reason_code: WaveReason.wave_paused_signal });
    }
    const grace = this.deps.timing.pause_grace_ms ?? 0;
    if (sig === "pause" && grace > 0) {
      // An operator at a terminal gets a moment to say "stop the agents too" with a second Ctrl-C.
      this.deps.log(`wave paused; agents keep running. Press Ctrl-C again within ${Math.round(grace / 1000)} s to stop them too.`);
      const until = this.deps.clock.nowMs() + grace;
      while (this.signal === "pause" && this.deps.clock.nowMs() < until) {
        await this.waitFor(Math.max(0, until - this.deps.clock.nowMs()));
      }
      this.wake = null;
    }
    if (this.signal === "pause_and_stop" || this.signal === "cancel") {
      // The operator asked for it: recorded as stopped_by_operator, which costs no attempt.
      const n = await stopByOperator(this.shell);
      this.deps.log(`agents stopped: ${n} job(s) ended; resume reruns them on the same provider without counting an attempt`);
    }
    return { kind: "paused" };
  }

  private item(id: string): ItemState {
    // The core's index, carried from step to step: one map per wave, not a second one here.
    const it = itemById(this.state, id);
    if (!it) throw new Error(`unknown item ${id}`);
    return it;
  }

  /** The item's tracker text, asked once: a second caller (the dispatch after a prefetch) waits on the first. */
  private issue(id: string): Promise<TrackerIssue> {
    let asked = this.issues.get(id);
    if (asked === undefined) {
      const p = this.askTracker(id);
      asked = p;
      this.issues.set(id, p);
      // A tracker that failed is asked again next time.
      p.catch(() => {
        if (this.issues.get(id) === p) this.issues.delete(id);
      });
    }
    return asked;
  }

  private async askTracker(id: string): Promise<TrackerIssue> {
    const r = await this.deps.tracker.show(id);
    const it = this.item(id);
    const issue: TrackerIssue = r.found
      ? r.issue
      : { id, title: it.title, description: "", acceptance_criteria: "", status: "open", labels: [], blocked_by: [] };
    return issue;
  }
}
