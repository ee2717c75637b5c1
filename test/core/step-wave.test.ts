import { WAVE_DIR, implContract, outcomePath } from "../helpers/events.js";
import { describeRows, type Row } from "./table.js";

// SPEC §6 wave statuses and REFERENCE §1 next_action, cancel, shell-settled items, and events the
// reducer must ignore.

const A = "bd-a1";
const B = "bd-b2";
const C = "bd-c3";
const D = "bd-d4";

const lifecycle: Row[] = [
  {
    name: "wave_created: pending wave, every item pending, nothing planned before start",
    ledger: { items: [A, B] },
    build: () => undefined,
    expect: {
      wave: { status: "pending", reason_code: "wave_pending", next_action: "start_or_resume_wave", error: null, completed_at: null },
      items: { [A]: { status: "pending", reason_code: "pending", next_action: "wait_for_wave", attempt: 0, provider: null, history: [] } },
      stats: { total: 2, pending: 2 },
      plan: { intents: [] },
    },
  },
  {
    name: "wave_started: running, every ready item planned on the first chain provider",
    ledger: { items: [A, B] },
    build: (l) => l.start(),
    expect: {
      wave: { status: "running", reason_code: "wave_running", next_action: "monitor_wave_until_terminal" },
      effects: [],
      plan: {
        intents: [
          { item_id: A, phase: "implement", attempt: 1, provider: "opencode", chain_index: 0, quota: null, skipped: [] },
          { item_id: B, phase: "implement", attempt: 1, provider: "opencode", chain_index: 0, quota: null, skipped: [] },
        ],
      },
    },
  },
  {
    name: "the wave stays running while any item is not terminal",
    ledger: { items: [A, B] },
    build: (l) => l.start().implement(A, "opencode", "completed").review(A, "opencode", "APPROVED"),
    expect: { wave: { status: "running", completed_at: null }, stats: { approved: 1, pending: 1 }, plan: { intents: [{ item_id: B }] } },
  },
  {
    name: "every item terminal, whatever the verdict -> completed, review_report_and_close_items",
    ledger: { items: [A, B] },
    build: (l) => l.start().implement(A, "opencode", "completed").review(A, "opencode", "APPROVED").implement(B, "opencode", "blocked"),
    expect: { wave: { status: "completed", reason_code: "wave_completed", next_action: "review_report_and_close_items" }, stats: { approved: 1, blocked: 1 } },
  },
  {
    name: "paused by signal -> run_dx_batch_resume, jobs left running, nothing planned",
    ledger: { items: [A, B] },
    build: (l) => l.start().dispatch(A, "implement", "opencode").pause(),
    expect: {
      wave: { status: "paused", reason_code: "wave_paused_signal", next_action: "run_dx_batch_resume" },
      items: { [A]: { status: "implementing" } },
      effects: [],
      plan: { intents: [] },
    },
  },
  {
    name: "a job that finishes while the wave is paused is still recorded",
    build: (l) =>
      l
        .start()
        .dispatch(A, "implement", "opencode")
        .pause()
        .finished(A, { contract: implContract(A, "completed") }),
    expect: { wave: { status: "paused" }, items: { [A]: { status: "reviewing" } } },
  },
  {
    name: "wave_resumed after a pause -> running again",
    ledger: { items: [A, B] },
    build: (l) => l.start().dispatch(A, "implement", "opencode").pause().resume(),
    expect: { wave: { status: "running", reason_code: "wave_running", next_action: "monitor_wave_until_terminal" }, plan: { intents: [{ item_id: B }] } },
  },
  {
    name: "failed exec_saturation -> run_dx_runner_prune_then_dx_batch_doctor, no dispatch",
    build: (l) => l.start().fail("exec_saturation", "412 live agent processes, cap 60"),
    expect: {
      wave: {
        status: "failed",
        reason_code: "exec_saturation",
        next_action: "run_dx_runner_prune_then_dx_batch_doctor",
        error: "412 live agent processes, cap 60",
      },
      plan: { intents: [] },
    },
  },
  {
    name: "failed doctor_critical_x -> run_dx_batch_doctor_and_resolve_critical",
    build: (l) => l.start().fail("doctor_critical_ledger_corrupt"),
    expect: { wave: { status: "failed", reason_code: "doctor_critical_ledger_corrupt", next_action: "run_dx_batch_doctor_and_resolve_critical" } },
  },
  {
    name: "any other failure -> inspect_wave_error_and_recover",
    build: (l) => l.start().fail("orchestrator_exception", "TypeError: boom"),
    expect: { wave: { status: "failed", reason_code: "orchestrator_exception", next_action: "inspect_wave_error_and_recover" } },
  },
  {
    name: "resume of an exec_saturation failure -> running, error cleared",
    build: (l) => l.start().fail("exec_saturation").resume(),
    expect: { wave: { status: "running", reason_code: "wave_running", error: null }, plan: { intents: [{ item_id: A }] } },
  },
  {
    name: "wave_started after the wave completed is ignored",
    build: (l) => l.start().implement(A, "opencode", "blocked").start(),
    expect: { wave: { status: "completed", reason_code: "wave_completed" }, effects: [] },
  },
  {
    name: "wave_failed after the wave completed is ignored",
    build: (l) => l.start().implement(A, "opencode", "blocked").fail("exec_saturation"),
    expect: { wave: { status: "completed", reason_code: "wave_completed", error: null } },
  },
];

const cancel: Row[] = [
  {
    name: "cancel of a half-done wave: stop and record active jobs, every open item cancelled",
    ledger: { items: [A, B, C, D] },
    build: (l) =>
      l
        .start()
        .implement(A, "opencode", "completed")
        .review(A, "opencode", "APPROVED")
        .dispatch(B, "implement", "opencode")
        .jobStarted(B)
        .implement(C, "opencode", "completed")
        .dispatch(C, "review", "opencode")
        .cancel(),
    expect: (l) => {
      const at = l.atOf("wave_cancelled");
      return {
        wave: { status: "cancelled", reason_code: "wave_cancelled", next_action: "review_outcomes_before_restart", completed_at: at },
        items: {
          [A]: { status: "approved", reason_code: "approved" },
          [B]: {
            status: "cancelled",
            reason_code: "cancelled",
            next_action: "inspect_findings_then_start_new_wave",
            run_instance: null,
            job: null,
            completed_at: at,
            history: [{ state: "stopped", reason_code: "cancelled", completed_at: at }],
          },
          [C]: { status: "cancelled", reason_code: "cancelled", outcome_path: outcomePath(C, "review", 1) },
          [D]: { status: "cancelled", reason_code: "cancelled", history: [] },
        },
        stats: { total: 4, approved: 1, cancelled: 3, implementing: 0, reviewing: 0, pending: 0 },
        effects: [
          { type: "stop_job", job: { item_id: B, phase: "implement", attempt: 1, provider: "opencode" } },
          { type: "release_lease", item_id: B, attempt: 1, lease_key: `${B}+attempt1` },
          {
            type: "write_outcome",
            path: outcomePath(B, "implement", 1),
            outcome: { beads_id: B, result: "cancelled", state: "stopped", reason_code: "cancelled", started_at: l.atOf("job_started", B), completed_at: at },
          },
          { type: "release_claim", item_id: B },
          { type: "tracker_comment", item_id: B },
          { type: "stop_job", job: { item_id: C, phase: "review", attempt: 1 } },
          { type: "release_lease", item_id: C },
          {
            type: "write_outcome",
            path: `${WAVE_DIR}/outcomes/${C}.review.attempt1.outcome.json`,
            outcome: { beads_id: C, phase: "review", result: "cancelled" },
          },
          { type: "release_claim", item_id: C },
          { type: "tracker_comment", item_id: C },
          // D was never dispatched: no job, no lease, no claim of ours.
          { type: "tracker_comment", item_id: D },
        ],
        plan: { intents: [] },
      };
    },
  },
  {
    name: "cancel of a paused wave cancels items between attempts too",
    ledger: { items: [A] },
    build: (l) => l.start().implement(A, "opencode", "failed").pause().cancel(),
    expect: {
      wave: { status: "cancelled" },
      items: { [A]: { status: "cancelled" } },
      effects: [
        { type: "release_claim", item_id: A },
        { type: "tracker_comment", item_id: A },
      ],
    },
  },
  {
    name: "cancel of a completed wave is ignored",
    build: (l) => l.start().implement(A, "opencode", "blocked").cancel(),
    expect: { wave: { status: "completed", reason_code: "wave_completed" }, items: { [A]: { status: "blocked" } }, effects: [] },
  },
  {
    name: "a job result arriving after the cancel is ignored",
    build: (l) => l.start().dispatch(A, "implement", "opencode").cancel().finished(A, { state: "stopped", exit_code: null }),
    expect: { wave: { status: "cancelled" }, items: { [A]: { status: "cancelled", history: [{ state: "stopped", reason_code: "cancelled" }] } }, effects: [] },
  },
];

const settled: Row[] = [
  {
    name: "worktree missing before the first dispatch -> failed, fix_worktree next action",
    ledger: { items: [A, B] },
    build: (l) => l.start().settled(A, "failed", "worktree_missing:/tmp/agents/bd-a1", "no worktree under /tmp/agents/bd-a1 and no repo configured"),
    expect: {
      wave: { status: "running" },
      items: {
        [A]: {
          status: "failed",
          reason_code: "worktree_missing:/tmp/agents/bd-a1",
          next_action: "fix_worktree_then_start_new_wave",
          error: "no worktree under /tmp/agents/bd-a1 and no repo configured",
        },
      },
      stats: { failed: 1, pending: 1 },
      effects: [
        { type: "release_claim", item_id: A },
        { type: "tracker_comment", item_id: A },
      ],
      plan: { intents: [{ item_id: B }] },
    },
  },
  {
    name: "claimed by another wave -> blocked, the rest goes on",
    ledger: { items: [A, B] },
    build: (l) => l.start().settled(A, "blocked", "item_claimed_by_other_wave:wave-other"),
    expect: {
      items: {
        [A]: { status: "blocked", reason_code: "item_claimed_by_other_wave:wave-other", next_action: "wait_for_other_wave_or_cancel_it" },
        [B]: { status: "pending" },
      },
      plan: { intents: [{ item_id: B, attempt: 1 }] },
    },
  },
  {
    name: "settled while a job runs: the job is stopped and its lease released",
    build: (l) => l.start().dispatch(A, "implement", "opencode").jobStarted(A).settled(A, "failed", "canonical_worktree_forbidden:/work/main"),
    expect: (l) => ({
      wave: { status: "completed" },
      items: {
        [A]: {
          status: "failed",
          reason_code: "canonical_worktree_forbidden:/work/main",
          next_action: "fix_worktree_then_start_new_wave",
          run_instance: null,
          job: null,
          history: [{ reason_code: "canonical_worktree_forbidden:/work/main", completed_at: l.atOf("item_settled") }],
        },
      },
      effects: [
        { type: "stop_job", job: { item_id: A, run_instance: l.runInstance(A) } },
        { type: "release_lease", item_id: A, attempt: 1 },
        { type: "release_claim", item_id: A },
        { type: "tracker_comment", item_id: A },
      ],
    }),
  },
  {
    name: "item_settled on a terminal item is ignored",
    build: (l) => l.start().implement(A, "opencode", "blocked").settled(A, "failed", "item_not_found"),
    expect: { items: { [A]: { status: "blocked", reason_code: "implement_reported_blocked" } }, effects: [] },
  },
  {
    name: "a tracker error is recorded on the item and changes nothing else",
    build: (l) => l.start().dispatch(A, "implement", "opencode").trackerError(A, "in_progress"),
    expect: { items: { [A]: { status: "implementing", reason_code: "implementing", tracker_error: "in_progress: tracker_command_failed" } }, effects: [] },
  },
];

const stale: Row[] = [
  {
    name: "job_finished with a stale run_instance is ignored",
    build: (l) => l.start().dispatch(A, "implement", "opencode").finished(A, { state: "exited_err", exit_code: 1 }, "ri-from-an-older-controller"),
    expect: (l) => ({
      items: { [A]: { status: "implementing", run_instance: l.runInstance(A), charged_attempts: 0, history: [{ completed_at: null }] } },
      effects: [],
    }),
  },
  {
    name: "job_started with a stale run_instance is ignored",
    build: (l) => l.start().dispatch(A, "implement", "opencode").jobStarted(A, { run_instance: "ri-stale" }),
    expect: { items: { [A]: { job: null, history: [{ started_at: null, state: null }] } }, effects: [] },
  },
  {
    name: "attempt_failed with a stale run_instance is ignored",
    build: (l) => l.start().dispatch(A, "implement", "opencode").attemptFailed(A, "runner_job_lost", "gone", "ri-stale"),
    expect: { items: { [A]: { status: "implementing", charged_attempts: 0 } }, effects: [] },
  },
  {
    name: "a late result of an earlier attempt does not touch the current one",
    build: (l) => {
      l.start().implement(A, "opencode", { state: "stalled", exit_code: null });
      const old = l.runInstance(A);
      l.dispatch(A, "implement", "cc-glm").finished(A, { contract: null }, old);
    },
    expect: { items: { [A]: { status: "implementing", attempt: 2, provider: "cc-glm", charged_attempts: 1 } }, effects: [] },
  },
];

describeRows({ "wave lifecycle": lifecycle, cancel, "items settled by the shell": settled, "stale events": stale });
