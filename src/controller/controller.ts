import type { Effect } from "../core/effects.js";
import { jobIdFor } from "../core/ids.js";
import { planDispatch, type DispatchIntent } from "../core/plan.js";
import { itemById } from "../core/step.js";
import { ItemReason, WaveReason, alreadyApproved, claimedByOtherWave } from "../core/reasons.js";
import type { ItemState, WaveState } from "../core/state.js";
import { isActiveItem, isFinishedJobState, isTerminalItem, type JobState } from "../core/status.js";
import { secondsBetween } from "../core/time.js";
import type { JobHealth, JobRef } from "../runner/port.js";
import type { TrackerIssue } from "../tracker/port.js";
import type { ControllerDeps, WorktreeResult } from "./ports.js";
import { implementPrompt, reviewPrompt } from "./prompts.js";
import { WaveSession } from "./session.js";
import { TrackedJobs, type TrackedJob } from "./tracked-jobs.js";
import { TrackerQueue } from "./tracker-queue.js";

// The imperative shell around the pure core. It sleeps until something happens (a job exits, a
// health check or a cooldown falls due, a signal arrives) and then runs one cycle: finish exited
// jobs, check health, run the cheap doctor checks, plan, dispatch. It never polls on a fixed
// period while it has nothing to do.

export type RunEnd =
  | { kind: "completed" }
  | { kind: "paused" }
  | { kind: "cancelled" }
  | { kind: "failed"; reason_code: string }
  | { kind: "lost_lock" }
  /** `start --detach`: the wave was created and handed to a background controller. */
  | { kind: "detached" };

export type ControlSignal = "pause" | "pause_and_stop" | "cancel";

const FINISH_STATES: ReadonlySet<JobState> = new Set(["stalled", "timed_out", "missing"]);

export class Controller {
  readonly session: WaveSession;
  private readonly jobs = new TrackedJobs();
  private readonly tracker: TrackerQueue;
  private readonly issues = new Map<string, TrackerIssue>();
  private wake: (() => void) | null = null;
  private kicked = false;
  private signal: ControlSignal | null = null;
  private nextHeartbeatMs = 0;
  private unsubscribe: (() => void) | null = null;
  private readonly index: Map<string, number>;

  constructor(
    private readonly deps: ControllerDeps,
    initial: WaveState,
  ) {
    this.session = new WaveSession(deps.files, initial, deps.clock, (e, s) => deps.onEvent?.(e, s));
    this.tracker = new TrackerQueue(deps.tracker, (item_id, op, reason_code, detail) => {
      // Recorded, never fatal (SPEC §10); it changes no status, so it has no effects to perform.
      this.session.apply({ event: "tracker_error", item_id, op, reason_code, detail });
    });
    this.index = new Map(initial.items.map((it, i) => [it.beads_id, i]));
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
      await this.reattach();
      for (;;) {
        const end = await this.cycle();
        if (end) return end;
        await this.sleep();
      }
    } finally {
      this.unsubscribe?.();
      await this.tracker.drain();
      this.session.flush(true);
    }
  }

  // -------------------------------------------------------------------------------------------

  private async cycle(): Promise<RunEnd | null> {
    this.kicked = false;
    // Jobs that ended together are finished together: each step is its own sync append, so the
    // ledger stays ordered while their checks and contract reads overlap.
    await Promise.all(this.jobs.takeExited().map((job) => this.finish(job, null)));
    await this.checkHealth();

    if (this.signal !== null) return this.handleSignal(this.signal);

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
    this.wakeAtMs = plan.wake_at === null ? null : Date.parse(plan.wake_at);
    if (plan.intents.length > 0) {
      const end = await this.deps.files.withExecLock(() => this.dispatchWithinCap(plan.intents));
      if (end) return end;
    }
    this.session.flush(false);
    return null;
  }

  /** Cheap doctor check before any dispatch (SPEC §8): the exec-saturation guard, then dispatch. */
  private async dispatchWithinCap(intents: readonly DispatchIntent[]): Promise<RunEnd | null> {
    const live = await this.deps.files.liveExecPids();
    if (live > this.deps.timing.exec_process_cap) {
      await this.perform(
        this.session.apply({
          event: "wave_failed",
          reason_code: WaveReason.exec_saturation,
          error: `${live} live agent processes exceed exec_process_cap ${this.deps.timing.exec_process_cap}; running jobs keep running`,
        }),
      );
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
    await Promise.all(chosen.map((intent) => this.dispatch(intent)));
    this.prefetchWorktrees();
    // An intent that ended its item instead of starting a job (worktree, claim or spawn failure)
    // freed its slot, and no job exit will come to wake the loop for it: plan again at once.
    if (chosen.some((i) => isTerminalItem(this.item(i.item_id).status))) this.kick();
    return null;
  }

  private wakeAtMs: number | null = null;
  private readonly prefetched = new Map<string, Promise<WorktreeResult | null>>();

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
    for (const it of s.items) {
      if (budget <= 0) break;
      if (it.status !== "pending" || it.worktree !== null || this.prefetched.has(it.beads_id)) continue;
      if (!it.depends_on.every(approved)) continue;
      this.prefetched.set(
        it.beads_id,
        this.deps.workspace.resolve(it.beads_id).catch(() => null),
      );
      budget -= 1;
    }
  }

  private async sleep(): Promise<void> {
    if (this.kicked) return;
    const now = this.deps.clock.nowMs();
    const candidates = [this.jobs.nextCheckMs(), this.wakeAtMs, this.nextHeartbeatMs, this.session.pendingFlush ? now + 1000 : null];
    const next = Math.min(...candidates.filter((x): x is number => x !== null));
    const delay = Math.max(0, Math.min(next - now, 60_000));
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, delay);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  // -------------------------------------------------------------------------------------------
  // Dispatch: lease and claim first, then the worktree and the prompt, then the durable
  // `item_dispatched` event, and only then the job (SPEC §8).

  private async dispatch(intent: DispatchIntent): Promise<void> {
    const files = this.deps.files;
    const item = this.item(intent.item_id);
    const lease = files.acquireLease(intent.item_id, intent.attempt);
    if (!lease.ok) {
      this.deps.log(`${intent.item_id}: lease for attempt ${intent.attempt} is held by ${lease.holder}; will retry`);
      return;
    }
    const claim = files.claim(intent.item_id);
    if (!claim.ok) {
      files.releaseLease(intent.item_id, intent.attempt);
      await this.perform(
        this.session.apply({
          event: "item_settled",
          item_id: intent.item_id,
          status: "blocked",
          reason_code: claimedByOtherWave(claim.byWave),
          error: `item is claimed by live wave ${claim.byWave}`,
        }),
      );
      return;
    }
    // SPEC §15.4: an item an earlier wave approved is not run again, unless --redo. Read under
    // the claim, so a wave approving it right now (it holds the claim until it ends) has written it.
    const prior = item.attempt === 0 && this.state.policy.redo !== true ? (files.approvedBy?.(intent.item_id) ?? null) : null;
    if (prior !== null && prior !== this.state.wave_id) {
      files.releaseLease(intent.item_id, intent.attempt);
      await this.perform(
        this.session.apply({ event: "item_settled", item_id: intent.item_id, status: "approved", reason_code: alreadyApproved(prior), error: `already approved by wave ${prior}; start --redo runs it again` }),
      );
      return;
    }
    let worktree = item.worktree;
    let base = item.base_commit;
    if (worktree === null) {
      const early = await this.prefetched.get(intent.item_id);
      this.prefetched.delete(intent.item_id);
      const w = early?.ok ? early : await this.deps.workspace.resolve(intent.item_id);
      if (!w.ok) {
        files.releaseLease(intent.item_id, intent.attempt);
        await this.perform(this.session.apply({ event: "item_settled", item_id: intent.item_id, status: w.status, reason_code: w.reason_code, error: w.detail }));
        return;
      }
      worktree = w.path;
      base = w.base_commit;
    }
    const issue = await this.issue(intent.item_id);
    const contractFile = files.contractPath(intent.item_id, intent.phase, intent.attempt);
    const head = intent.phase === "review" ? await this.deps.workspace.head(worktree) : null;
    const text =
      intent.phase === "implement"
        ? implementPrompt(
            {
              item_id: item.beads_id,
              title: issue.title,
              description: issue.description,
              acceptance_criteria: issue.acceptance_criteria,
              worktree,
              base_commit: base,
              attempt: intent.attempt,
              contract_file: contractFile,
              previous_findings: item.carry.findings,
              previous_failure: item.carry.failure,
            },
            this.deps.templates.implement,
          )
        : reviewPrompt(
            {
              item_id: item.beads_id,
              title: issue.title,
              description: issue.description,
              acceptance_criteria: issue.acceptance_criteria,
              worktree,
              attempt: intent.attempt,
              implement_summary: item.carry.summary,
              diff_range: base === null ? `${head ?? "HEAD"} (every commit of the branch)` : `${base}..${head ?? "HEAD"}`,
              contract_file: contractFile,
            },
            this.deps.templates.review,
          );
    files.writePrompt(intent.item_id, intent.phase, intent.attempt, text);
    const effects = this.session.apply({
      event: "item_dispatched",
      item_id: intent.item_id,
      phase: intent.phase,
      attempt: intent.attempt,
      provider: intent.provider,
      chain_index: intent.chain_index,
      run_instance: this.deps.newRunInstance(),
      lease_key: lease.key,
      worktree,
      base_commit: base,
      quota: intent.quota,
      skipped: intent.skipped,
    });
    await this.perform(effects);
  }

  /** Start the job of a dispatched attempt; a spawn failure fails the item (SPEC §6). */
  private async startJob(it: ItemState): Promise<void> {
    if (it.run_instance === null || it.phase === null || it.provider === null || it.worktree === null) return;
    const files = this.deps.files;
    const ref: JobRef = {
      job_id: jobIdFor(it.beads_id, it.phase),
      provider: it.provider,
      run_instance: it.run_instance,
      contract_file: this.deps.files.contractPath(it.beads_id, it.phase, it.attempt),
    };
    const runInstance = it.run_instance;
    const phase = it.phase;
    const attempt = it.attempt;
    const provider = it.provider;
    // Track before starting, so an exit reported during start() is not missed.
    this.jobs.add({ ref, item_id: it.beads_id, phase, attempt, provider, started_at: null, pid: null, own: true, next_check_ms: this.nextCheck(true) });
    try {
      const started = await this.deps.runner.start({
        job_id: ref.job_id,
        item_id: it.beads_id,
        wave_id: this.state.wave_id,
        phase,
        attempt,
        provider,
        run_instance: runInstance,
        worktree: it.worktree,
        prompt_file: files.promptPath(it.beads_id, phase, attempt),
        contract_file: files.contractPath(it.beads_id, phase, attempt),
      });
      files.registerPid({ pid: started.pid, pgid: started.pgid, item_id: it.beads_id, phase, attempt, run_instance: runInstance });
      const tracked = this.jobs.get(runInstance);
      if (tracked) {
        tracked.pid = started.pid;
        tracked.started_at = started.started_at;
      }
      await this.perform(
        this.session.apply({
          event: "job_started",
          item_id: it.beads_id,
          phase,
          attempt,
          provider,
          run_instance: runInstance,
          pid: started.pid,
          pgid: started.pgid,
          started_at: started.started_at,
          log_path: started.log_path,
        }),
      );
    } catch (err) {
      this.jobs.remove(runInstance);
      const detail = err instanceof Error ? err.message : String(err);
      await this.perform(
        this.session.apply({
          event: "item_settled",
          item_id: it.beads_id,
          status: "failed",
          reason_code: phase === "implement" ? ItemReason.dispatch_failed : ItemReason.review_dispatch_failed,
          error: detail,
        }),
      );
    }
  }

  // -------------------------------------------------------------------------------------------
  // Finishing: the runner's final state plus the validated contract become one `job_finished`.

  private async checkHealth(): Promise<void> {
    const now = this.deps.clock.nowMs();
    for (const job of this.jobs.dueForCheck(now)) {
      let h: JobHealth;
      try {
        h = await this.deps.runner.check(job.ref, {
          stall_minutes: this.deps.timing.stall_minutes,
          max_runtime_minutes: this.deps.timing.max_runtime_minutes,
        });
      } catch (err) {
        this.deps.log(`${job.item_id}: health check failed: ${err instanceof Error ? err.message : String(err)}`);
        job.next_check_ms = now + this.deps.timing.health_interval_ms;
        continue;
      }
      if (isFinishedJobState(h.state) || FINISH_STATES.has(h.state)) await this.finish(job, h);
      else job.next_check_ms = this.deps.clock.nowMs() + (job.own ? this.deps.timing.health_interval_ms : this.deps.timing.reattach_poll_ms);
    }
  }

  private async finish(job: TrackedJob, health: JobHealth | null): Promise<void> {
    if (!this.jobs.get(job.ref.run_instance)) return;
    const opts = { stall_minutes: this.deps.timing.stall_minutes, max_runtime_minutes: this.deps.timing.max_runtime_minutes };
    let h = health ?? (await this.deps.runner.check(job.ref, opts));
    if (h.state === "stalled" || h.state === "timed_out") {
      // Kill before retrying: a stalled agent left running would race its own retry (REFERENCE §1).
      await this.deps.runner.stop(job.ref);
    } else if (!isFinishedJobState(h.state) && h.state !== "missing") {
      // The exit event can beat the rc file by a moment; look once more before deciding.
      h = await this.deps.runner.check(job.ref, opts);
      if (!isFinishedJobState(h.state) && h.state !== "missing") return;
    }
    this.jobs.remove(job.ref.run_instance);
    if (job.pid !== null) this.deps.files.removePid(job.pid);
    const item = this.item(job.item_id);
    if (item.run_instance !== job.ref.run_instance) return;
    const outcomePath = this.deps.files.outcomePath(job.item_id, job.phase, job.attempt);
    if (h.state === "missing" && item.job === null && this.signal !== "cancel") {
      // Never started (the controller died between `item_dispatched` and the start): start it now
      // under the same run_instance (SPEC §8).
      await this.startJob(item);
      return;
    }
    if (h.state === "missing") {
      await this.perform(
        this.session.apply({
          event: "attempt_failed",
          item_id: job.item_id,
          phase: job.phase,
          attempt: job.attempt,
          provider: job.provider,
          run_instance: job.ref.run_instance,
          reason_code: ItemReason.runner_job_lost,
          error: "the runner has no trace of the job (it vanished while no controller watched it)",
          outcome_path: outcomePath,
        }),
      );
      return;
    }
    let contract = null;
    let contractError: string | null = null;
    const src = await this.deps.runner.readContract(job.ref);
    if (src.found) {
      const v = this.deps.contracts.validate(src.text, { item_id: job.item_id, phase: job.phase });
      if (v.ok) contract = v.contract;
      else contractError = `${v.reason_code}: ${v.detail}`;
    } else contractError = `${src.reason_code}: ${src.detail}`;
    const startedAt = h.started_at ?? job.started_at ?? item.job?.started_at ?? null;
    const finishedAt = h.finished_at ?? this.deps.clock.nowIso();
    await this.perform(
      this.session.apply({
        event: "job_finished",
        item_id: job.item_id,
        phase: job.phase,
        attempt: job.attempt,
        provider: job.provider,
        run_instance: job.ref.run_instance,
        started_at: startedAt,
        state: h.state,
        exit_code: h.exit_code,
        runner_reason: h.reason_code,
        contract,
        contract_error: contractError,
        outcome_path: outcomePath,
        duration_sec: startedAt ? Math.max(0, secondsBetween(startedAt, finishedAt)) : null,
      }),
    );
  }

  // -------------------------------------------------------------------------------------------
  // Resume: every active item is re-attached, finished from its files, restarted if it never
  // started, or failed as `runner_job_lost` if it vanished (SPEC §8).

  private async reattach(): Promise<void> {
    for (const it of this.state.items) {
      if (!isActiveItem(it.status) || it.run_instance === null || it.phase === null || it.provider === null) continue;
      const ref: JobRef = {
      job_id: jobIdFor(it.beads_id, it.phase),
      provider: it.provider,
      run_instance: it.run_instance,
      contract_file: this.deps.files.contractPath(it.beads_id, it.phase, it.attempt),
    };
      // Leases belong to a process: take over the dead predecessor's so this controller can release it.
      this.deps.files.acquireLease(it.beads_id, it.attempt);
      const job: TrackedJob = {
        ref,
        item_id: it.beads_id,
        phase: it.phase,
        attempt: it.attempt,
        provider: it.provider,
        started_at: it.job?.started_at ?? null,
        pid: it.job?.pid ?? null,
        own: false,
        next_check_ms: 0,
      };
      this.jobs.add(job);
      const h = await this.deps.runner.check(ref, { stall_minutes: this.deps.timing.stall_minutes, max_runtime_minutes: this.deps.timing.max_runtime_minutes });
      if (h.state === "missing" && it.job === null) {
        this.jobs.remove(ref.run_instance);
        if (this.signal === "cancel") continue;
        this.deps.log(`${it.beads_id}: dispatched but never started; starting it under ${it.run_instance}`);
        await this.startJob(it);
        continue;
      }
      if (h.state !== "missing" && it.job === null && h.pid !== null) {
        // It started but the controller died before recording it: record it now.
        job.pid = h.pid;
        await this.perform(
          this.session.apply({
            event: "job_started",
            item_id: it.beads_id,
            phase: it.phase,
            attempt: it.attempt,
            provider: it.provider,
            run_instance: it.run_instance,
            pid: h.pid,
            pgid: h.pid,
            started_at: h.started_at ?? this.deps.clock.nowIso(),
            log_path: "",
          }),
        );
      }
      if (isFinishedJobState(h.state) || FINISH_STATES.has(h.state)) await this.finish(job, h);
    }
  }

  // -------------------------------------------------------------------------------------------

  private async handleSignal(sig: ControlSignal): Promise<RunEnd> {
    if (sig === "cancel") {
      await Promise.all(this.jobs.all().map((j) => this.deps.runner.stop(j.ref)));
      await this.perform(this.session.apply({ event: "wave_cancelled", reason_code: WaveReason.wave_cancelled }));
      for (const j of this.jobs.all()) this.jobs.remove(j.ref.run_instance);
      return { kind: "cancelled" };
    }
    if (this.state.status === "running" || this.state.status === "pending") {
      await this.perform(this.session.apply({ event: "wave_paused", reason_code: WaveReason.wave_paused_signal }));
    }
    const grace = this.deps.timing.pause_grace_ms ?? 0;
    if (sig === "pause" && grace > 0) {
      // An operator at a terminal gets a moment to say "stop the agents too" with a second Ctrl-C.
      this.deps.log(`wave paused; agents keep running. Press Ctrl-C again within ${Math.round(grace / 1000)} s to stop them too.`);
      const until = this.deps.clock.nowMs() + grace;
      while (this.signal === "pause" && this.deps.clock.nowMs() < until) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.max(0, until - this.deps.clock.nowMs()));
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
      this.wake = null;
    }
    if (this.signal === "pause_and_stop" || this.signal === "cancel") await this.stopAll();
    return { kind: "paused" };
  }

  /** Second SIGINT: stop every job too (their items are re-checked and retried on resume). */
  async stopAll(): Promise<void> {
    await Promise.all(this.jobs.all().map((j) => this.deps.runner.stop(j.ref)));
  }

  /** Perform effects in order. Returns a promise for callers that must wait (dispatch, cancel). */
  private perform(effects: readonly Effect[]): Promise<void> {
    const files = this.deps.files;
    let chain = Promise.resolve();
    for (const ef of effects) {
      switch (ef.type) {
        case "release_lease":
          files.releaseLease(ef.item_id, ef.attempt);
          break;
        case "release_claim":
          files.releaseClaim(ef.item_id);
          break;
        case "write_outcome":
          files.writeOutcome(ef.path, ef.outcome);
          break;
        case "tracker_in_progress":
          this.tracker.markInProgress(ef.item_id);
          break;
        case "tracker_comment":
          this.tracker.comment(ef.item_id, ef.text);
          break;
        case "tracker_close":
          this.tracker.close(ef.item_id, ef.reason);
          break;
        case "stop_job": {
          const ref: JobRef = { job_id: jobIdFor(ef.job.item_id, ef.job.phase), provider: ef.job.provider, run_instance: ef.job.run_instance };
          // finish() never runs for a stopped job, so its pid file goes here, once the group is gone.
          const pid = this.jobs.get(ef.job.run_instance)?.pid ?? null;
          this.jobs.remove(ef.job.run_instance);
          chain = chain.then(() =>
            this.deps.runner.stop(ref).then(() => {
              if (pid !== null) files.removePid(pid);
            }),
          );
          break;
        }
        case "start_job": {
          const it = this.item(ef.job.item_id);
          chain = chain.then(() => this.startJob(it));
          break;
        }
      }
    }
    return chain;
  }

  private nextCheck(own: boolean): number {
    return this.deps.clock.nowMs() + (own ? this.deps.timing.health_interval_ms : this.deps.timing.reattach_poll_ms);
  }

  private item(id: string): ItemState {
    const i = this.index.get(id);
    const it = i === undefined ? undefined : this.state.items[i];
    if (!it) throw new Error(`unknown item ${id}`);
    return it;
  }

  private async issue(id: string): Promise<TrackerIssue> {
    const cached = this.issues.get(id);
    if (cached) return cached;
    const r = await this.deps.tracker.show(id);
    const it = this.item(id);
    const issue: TrackerIssue = r.found
      ? r.issue
      : { id, title: it.title, description: "", acceptance_criteria: "", status: "open", labels: [], blocked_by: [] };
    this.issues.set(id, issue);
    return issue;
  }
}
