import type { Finding } from "../../src/core/index.js";
import { implContract, outcomePath, reviewContract } from "../helpers/events.js";
import { describeRows, type Row } from "./table.js";

// SPEC §6: an item through implement and review, and every way an attempt can end.

const A = "bd-a1";
const findings = (message: string): Finding[] => [{ type: "major", message, file: "src/a.ts", line: 7 }];
const LONG_CHAIN = ["opencode", "cc-glm", "claude-code", "gemini", "codex", "blocked"];

const happy: Row[] = [
  {
    name: "first dispatch starts the job and marks the tracker item in progress",
    build: (l) => l.start().dispatch(A, "implement", "opencode"),
    expect: (l) => ({
      items: {
        [A]: {
          status: "implementing",
          reason_code: "implementing",
          attempt: 1,
          provider: "opencode",
          phase: "implement",
          implementer: "opencode",
          lease_key: `${A}+attempt1`,
          run_instance: l.runInstance(A),
          chain_index: 0,
          base_commit: "base0001",
          started_at: l.atOf("item_dispatched"),
        },
      },
      stats: { implementing: 1, pending: 0 },
      effects: [
        { type: "start_job", job: { item_id: A, phase: "implement", attempt: 1, provider: "opencode", run_instance: l.runInstance(A) } },
        { type: "tracker_in_progress", item_id: A },
      ],
      plan: { intents: [] },
    }),
  },
  {
    name: "job_started records the process and the attempt's start",
    build: (l) => l.start().dispatch(A, "implement", "opencode").jobStarted(A),
    expect: (l) => ({
      items: {
        [A]: {
          status: "implementing",
          job: { started_at: l.atOf("job_started"), log_path: `/tmp/dx-runner/opencode/${A}.log` },
          history: [{ started_at: l.atOf("job_started"), state: "launching" }],
        },
      },
      effects: [],
    }),
  },
  {
    name: "implement completed -> reviewing, lease released, outcome written, review planned",
    build: (l) => l.start().implement(A, "opencode", "completed"),
    expect: {
      wave: { status: "running", reason_code: "wave_running", next_action: "monitor_wave_until_terminal" },
      items: {
        [A]: {
          status: "reviewing",
          reason_code: "implement_completed_pending_review",
          phase: "review",
          attempt: 1,
          charged_attempts: 1,
          run_instance: null,
          job: null,
          outcome_path: outcomePath(A, "implement", 1),
          carry: { summary: "implement completed" },
        },
      },
      stats: { reviewing: 1 },
      effects: [
        { type: "release_lease", item_id: A, attempt: 1, lease_key: `${A}+attempt1` },
        {
          type: "write_outcome",
          path: outcomePath(A, "implement", 1),
          outcome: {
            wave_id: "wave-test",
            beads_id: A,
            phase: "implement",
            attempt: 1,
            provider: "opencode",
            result: "success",
            state: "exited_ok",
            exit_code: 0,
            reason_code: "implement_completed_pending_review",
            verdict: null,
            summary: "implement completed",
            duration_sec: 60,
          },
        },
      ],
      plan: { intents: [{ item_id: A, phase: "review", attempt: 1, provider: "opencode", chain_index: 0, quota: null, skipped: [] }] },
    },
  },
  {
    name: "implement partial is a success too and goes to review",
    build: (l) => l.start().implement(A, "opencode", "partial"),
    expect: { items: { [A]: { status: "reviewing", reason_code: "implement_completed_pending_review" } } },
  },
  {
    name: "review dispatch starts only the job (the tracker was told at the first dispatch)",
    build: (l) => l.start().implement(A, "opencode", "completed").dispatch(A, "review", "opencode"),
    expect: (l) => ({
      items: { [A]: { status: "reviewing", reason_code: "reviewing", phase: "review", attempt: 1, provider: "opencode", implementer: "opencode" } },
      effects: [{ type: "start_job", job: { item_id: A, phase: "review", attempt: 1, provider: "opencode", run_instance: l.runInstance(A) } }],
    }),
  },
  {
    name: "happy path: implement -> review APPROVED -> approved, wave completed",
    build: (l) => l.start().implement(A, "opencode", "completed").review(A, "opencode", "APPROVED"),
    expect: (l) => ({
      wave: { status: "completed", reason_code: "wave_completed", next_action: "review_report_and_close_items", completed_at: l.atOf("job_finished") },
      items: {
        [A]: {
          status: "approved",
          reason_code: "approved",
          next_action: "review_and_close_item",
          verdict: "APPROVED",
          attempt: 1,
          charged_attempts: 1,
          error: null,
          completed_at: l.atOf("job_finished"),
          outcome_path: outcomePath(A, "review", 1),
          history: [
            { phase: "implement", attempt: 1, provider: "opencode", state: "exited_ok", reason_code: "implement_completed_pending_review", charged: true },
            { phase: "review", attempt: 1, provider: "opencode", state: "exited_ok", reason_code: "approved", verdict: "APPROVED", charged: true },
          ],
        },
      },
      stats: { total: 1, approved: 1, reviewing: 0 },
      effects: [
        { type: "release_lease", item_id: A, attempt: 1 },
        {
          type: "write_outcome",
          path: outcomePath(A, "review", 1),
          outcome: { phase: "review", result: "success", reason_code: "approved", verdict: "APPROVED", findings_count: 0 },
        },
        { type: "release_claim", item_id: A },
        { type: "tracker_comment", item_id: A },
        { type: "tracker_close", item_id: A },
        { type: "deliver_item", item_id: A },
      ],
    }),
  },
  {
    name: "--no-review: implement completed -> approved (approved_no_review)",
    ledger: { policy: { require_review: false } },
    build: (l) => l.start().implement(A, "opencode", "completed"),
    expect: {
      wave: { status: "completed", reason_code: "wave_completed" },
      items: { [A]: { status: "approved", reason_code: "approved_no_review", verdict: null, history: [{ reason_code: "approved_no_review" }] } },
      effects: [
        { type: "release_lease" },
        { type: "write_outcome", outcome: { result: "success", reason_code: "approved_no_review" } },
        { type: "release_claim", item_id: A },
        { type: "tracker_comment", item_id: A },
        { type: "tracker_close", item_id: A },
        { type: "deliver_item", item_id: A },
      ],
    },
  },
  {
    name: "no_op_success runner state with a completed contract is a success",
    build: (l) => l.start().implement(A, "opencode", { state: "no_op_success", exit_code: 0, contract: implContract(A, "completed") }),
    expect: { items: { [A]: { status: "reviewing", reason_code: "implement_completed_pending_review", history: [{ state: "no_op_success" }] } } },
  },
];

const revisions: Row[] = [
  {
    name: "REVISION_REQUIRED -> revision_required, next attempt on the next provider carries the findings",
    build: (l) => l.start().implement(A, "opencode", "completed").review(A, "opencode", "REVISION_REQUIRED", findings("round 1")),
    expect: {
      items: {
        [A]: {
          status: "revision_required",
          reason_code: "revision_required",
          verdict: "REVISION_REQUIRED",
          phase: "implement",
          attempt: 1,
          chain_index: 1,
          charged_attempts: 1,
          carry: { findings: findings("round 1"), failure: null, summary: "implement completed" },
        },
      },
      stats: { revision_required: 1 },
      effects: [
        { type: "release_lease", item_id: A, attempt: 1 },
        {
          type: "write_outcome",
          outcome: { phase: "review", result: "success", reason_code: "revision_required", verdict: "REVISION_REQUIRED", findings_count: 1 },
        },
      ],
      plan: { intents: [{ item_id: A, phase: "implement", attempt: 2, provider: "cc-glm", chain_index: 1, quota: null, skipped: [] }] },
    },
  },
  {
    name: "the revision attempt is dispatched with the findings still carried and the verdict cleared",
    build: (l) =>
      l.start().implement(A, "opencode", "completed").review(A, "opencode", "REVISION_REQUIRED", findings("round 1")).dispatch(A, "implement", "cc-glm"),
    expect: {
      items: {
        [A]: {
          status: "implementing",
          attempt: 2,
          provider: "cc-glm",
          implementer: "cc-glm",
          chain_index: 1,
          verdict: null,
          carry: { findings: findings("round 1") },
        },
      },
    },
  },
  {
    name: "three REVISION_REQUIRED in a row, chain of 3 providers + blocked -> blocked retry_chain_exhausted",
    ledger: { policy: { retry_chain: ["opencode", "cc-glm", "claude-code", "blocked"], max_attempts: 5 } },
    build: (l) =>
      l
        .start()
        .implement(A, "opencode", "completed")
        .review(A, "opencode", "REVISION_REQUIRED", findings("round 1"))
        .implement(A, "cc-glm", "completed")
        .review(A, "opencode", "REVISION_REQUIRED", findings("round 2"))
        .implement(A, "claude-code", "completed")
        .review(A, "opencode", "REVISION_REQUIRED", findings("round 3")),
    expect: {
      wave: { status: "completed", reason_code: "wave_completed" },
      items: {
        [A]: {
          status: "blocked",
          reason_code: "retry_chain_exhausted",
          next_action: "inspect_findings_then_start_new_wave",
          attempt: 3,
          charged_attempts: 3,
          chain_index: 2,
          verdict: "REVISION_REQUIRED",
          error: "review asked for revision: round 3",
          carry: { findings: findings("round 3") },
          history: [
            { phase: "implement", attempt: 1, provider: "opencode" },
            { phase: "review", attempt: 1, verdict: "REVISION_REQUIRED", findings: findings("round 1") },
            { phase: "implement", attempt: 2, provider: "cc-glm" },
            { phase: "review", attempt: 2, verdict: "REVISION_REQUIRED", findings: findings("round 2") },
            { phase: "implement", attempt: 3, provider: "claude-code" },
            { phase: "review", attempt: 3, verdict: "REVISION_REQUIRED", findings: findings("round 3") },
          ],
        },
      },
      stats: { blocked: 1 },
      effects: [
        { type: "release_lease", attempt: 3 },
        { type: "write_outcome", outcome: { attempt: 3, reason_code: "revision_required" } },
        { type: "release_claim", item_id: A },
        {
          type: "tracker_comment",
          item_id: A,
          text: "dx-batch wave wave-test: blocked (retry_chain_exhausted) after 3 attempt(s): review asked for revision: round 3",
        },
      ],
      plan: { intents: [] },
    },
  },
  {
    name: "a long chain ends at max_attempts: blocked max_attempts_exceeded",
    ledger: { policy: { retry_chain: LONG_CHAIN, max_attempts: 2 } },
    build: (l) =>
      l
        .start()
        .implement(A, "opencode", "completed")
        .review(A, "opencode", "REVISION_REQUIRED")
        .implement(A, "cc-glm", "completed")
        .review(A, "opencode", "REVISION_REQUIRED"),
    expect: { items: { [A]: { status: "blocked", reason_code: "max_attempts_exceeded", attempt: 2, charged_attempts: 2, chain_index: 1 } } },
  },
  {
    name: "failed attempts count against max_attempts too",
    ledger: { policy: { retry_chain: LONG_CHAIN, max_attempts: 2 } },
    build: (l) =>
      l
        .start()
        .implement(A, "opencode", { state: "stalled", exit_code: null, contract_error: null })
        .implement(A, "cc-glm", { state: "stalled", exit_code: null, contract_error: null }),
    expect: {
      items: { [A]: { status: "blocked", reason_code: "max_attempts_exceeded", error: "last attempt: stalled: job ended stalled", charged_attempts: 2 } },
    },
  },
  {
    name: "review BLOCKED -> blocked review_blocked",
    build: (l) => l.start().implement(A, "opencode", "completed").review(A, "opencode", "BLOCKED", findings("needs a product decision")),
    expect: {
      items: { [A]: { status: "blocked", reason_code: "review_blocked", verdict: "BLOCKED", error: "review BLOCKED" } },
      effects: [
        { type: "release_lease" },
        { type: "write_outcome", outcome: { verdict: "BLOCKED", reason_code: "review_blocked" } },
        { type: "release_claim" },
        { type: "tracker_comment" },
      ],
    },
  },
];

const failures: Row[] = [
  {
    name: "stalled attempt -> stop the job, pending with reason stalled, next attempt on the next provider",
    build: (l) => l.start().implement(A, "opencode", { state: "stalled", exit_code: null, runner_reason: "stalled", contract_error: null }),
    expect: (l) => ({
      items: {
        [A]: {
          status: "pending",
          reason_code: "stalled",
          phase: "implement",
          attempt: 1,
          chain_index: 1,
          charged_attempts: 1,
          run_instance: null,
          error: "job ended stalled",
          carry: { findings: [], failure: "stalled: job ended stalled" },
          history: [{ state: "stalled", reason_code: "stalled", charged: true }],
        },
      },
      effects: [
        { type: "stop_job", job: { item_id: A, phase: "implement", attempt: 1, provider: "opencode", run_instance: l.runInstance(A) } },
        { type: "release_lease", item_id: A, attempt: 1 },
        { type: "write_outcome", outcome: { result: "failed", state: "stalled", reason_code: "stalled" } },
      ],
      plan: { intents: [{ item_id: A, phase: "implement", attempt: 2, provider: "cc-glm", chain_index: 1 }] },
    }),
  },
  {
    name: "after a stall the next attempt runs on the next provider and can succeed",
    build: (l) => l.start().implement(A, "opencode", { state: "stalled", exit_code: null }).implement(A, "cc-glm", "completed"),
    expect: {
      items: {
        [A]: {
          status: "reviewing",
          attempt: 2,
          provider: "cc-glm",
          implementer: "cc-glm",
          charged_attempts: 2,
          history: [{ provider: "opencode", reason_code: "stalled" }, { provider: "cc-glm" }],
        },
      },
    },
  },
  {
    name: "max runtime -> stop the job, attempt failed max_runtime_exceeded (outcome timeout)",
    build: (l) => l.start().implement(A, "opencode", { state: "timed_out", exit_code: null, runner_reason: "max_runtime_exceeded" }),
    expect: {
      items: { [A]: { status: "pending", reason_code: "max_runtime_exceeded", chain_index: 1 } },
      effects: [
        { type: "stop_job" },
        { type: "release_lease" },
        { type: "write_outcome", outcome: { result: "timeout", reason_code: "max_runtime_exceeded" } },
      ],
    },
  },
  {
    name: "the last chain provider fails -> blocked retry_chain_exhausted",
    build: (l) =>
      l
        .start()
        .implement(A, "opencode", { state: "stalled", exit_code: null, contract_error: null })
        .implement(A, "cc-glm", { state: "stalled", exit_code: null, contract_error: null }),
    expect: {
      items: {
        [A]: { status: "blocked", reason_code: "retry_chain_exhausted", attempt: 2, charged_attempts: 2, error: "last attempt: stalled: job ended stalled" },
      },
      effects: [{ type: "stop_job" }, { type: "release_lease" }, { type: "write_outcome" }, { type: "release_claim" }, { type: "tracker_comment" }],
    },
  },
  {
    name: "invalid implement contract -> implement_contract_missing_or_invalid, retried",
    build: (l) =>
      l.start().implement(A, "opencode", { contract: null, contract_error: "contract: /status must be one of completed, partial, failed, no_op, blocked" }),
    expect: {
      items: {
        [A]: {
          status: "pending",
          reason_code: "implement_contract_missing_or_invalid",
          chain_index: 1,
          charged_attempts: 1,
          error: "contract: /status must be one of completed, partial, failed, no_op, blocked",
          carry: { failure: "implement_contract_missing_or_invalid: contract: /status must be one of completed, partial, failed, no_op, blocked" },
        },
      },
      effects: [
        { type: "release_lease" },
        { type: "write_outcome", outcome: { result: "failed", reason_code: "implement_contract_missing_or_invalid", summary: null } },
      ],
      plan: { intents: [{ item_id: A, attempt: 2, provider: "cc-glm" }] },
    },
  },
  {
    name: "a review contract delivered by an implement job is invalid for it",
    build: (l) => l.start().implement(A, "opencode", { contract: reviewContract(A, "APPROVED"), contract_error: null }),
    expect: { items: { [A]: { status: "pending", reason_code: "implement_contract_missing_or_invalid", error: "no contract" } } },
  },
  {
    name: "missing review contract -> blocked review_contract_missing_or_invalid",
    build: (l) => l.start().implement(A, "opencode", "completed").review(A, "opencode", { contract: null }),
    expect: {
      items: { [A]: { status: "blocked", reason_code: "review_contract_missing_or_invalid", error: "no contract found", charged_attempts: 1 } },
      effects: [
        { type: "release_lease" },
        { type: "write_outcome", outcome: { phase: "review", result: "failed", reason_code: "review_contract_missing_or_invalid" } },
        { type: "release_claim" },
        { type: "tracker_comment" },
      ],
    },
  },
  {
    name: "implement contract blocked -> blocked implement_reported_blocked",
    build: (l) => l.start().implement(A, "opencode", "blocked"),
    expect: {
      wave: { status: "completed" },
      items: { [A]: { status: "blocked", reason_code: "implement_reported_blocked", error: "implement blocked", charged_attempts: 1 } },
      effects: [
        { type: "release_lease" },
        { type: "write_outcome", outcome: { result: "failed", reason_code: "implement_reported_blocked" } },
        { type: "release_claim" },
        { type: "tracker_comment" },
      ],
    },
  },
  {
    name: "implement contract failed -> attempt failed implement_reported_failed, retried",
    build: (l) => l.start().implement(A, "opencode", "failed"),
    expect: {
      items: {
        [A]: {
          status: "pending",
          reason_code: "implement_reported_failed",
          error: "implement failed",
          chain_index: 1,
          carry: { failure: "implement_reported_failed: implement failed" },
        },
      },
      plan: { intents: [{ attempt: 2, provider: "cc-glm" }] },
    },
  },
  {
    name: "implement contract no_op -> attempt failed no_op, retried",
    build: (l) => l.start().implement(A, "opencode", "no_op"),
    expect: {
      items: { [A]: { status: "pending", reason_code: "no_op", chain_index: 1 } },
      effects: [{ type: "release_lease" }, { type: "write_outcome", outcome: { result: "failed", reason_code: "no_op" } }],
    },
  },
  {
    name: "non-zero exit with a completed contract is a failure (exited_err)",
    build: (l) => l.start().implement(A, "opencode", { state: "exited_err", exit_code: 1, contract: implContract(A, "completed") }),
    expect: {
      items: { [A]: { status: "pending", reason_code: "exited_err", error: "job ended exited_err (exit 1)", chain_index: 1 } },
      effects: [
        { type: "release_lease" },
        { type: "write_outcome", outcome: { result: "failed", reason_code: "exited_err", exit_code: 1, summary: "implement completed" } },
      ],
    },
  },
  {
    name: "a runner that says exited_ok with a non-zero exit code is still a failure",
    build: (l) => l.start().implement(A, "opencode", { state: "exited_ok", exit_code: 3, contract: implContract(A, "completed") }),
    expect: { items: { [A]: { status: "pending", reason_code: "exited_err", error: "job ended exited_ok (exit 3)" } } },
  },
  {
    name: "the runner's own reason names the failure (log_size_capped)",
    build: (l) => l.start().implement(A, "opencode", { state: "exited_err", exit_code: 137, runner_reason: "log_size_capped" }),
    expect: { items: { [A]: { status: "pending", reason_code: "log_size_capped" } } },
  },
  {
    name: "a job that vanished (attempt_failed runner_job_lost) is a counted failed attempt",
    build: (l) => l.start().dispatch(A, "implement", "opencode").jobStarted(A).attemptFailed(A, "runner_job_lost", "pid 1234 gone, no rc file"),
    expect: (l) => ({
      items: {
        [A]: {
          status: "pending",
          reason_code: "runner_job_lost",
          charged_attempts: 1,
          chain_index: 1,
          error: "pid 1234 gone, no rc file",
          history: [{ state: "missing", reason_code: "runner_job_lost", outcome_path: outcomePath(A, "implement", 1) }],
        },
      },
      effects: [
        { type: "stop_job", job: { item_id: A, run_instance: l.runInstance(A) } },
        { type: "release_lease", item_id: A, attempt: 1 },
        { type: "write_outcome", outcome: { result: "error", reason_code: "runner_job_lost", started_at: l.atOf("job_started") } },
      ],
      plan: { intents: [{ attempt: 2, provider: "cc-glm" }] },
    }),
  },
  {
    name: "findings of a review survive a failed revision attempt so the next prompt still carries them",
    ledger: { policy: { retry_chain: LONG_CHAIN } },
    build: (l) =>
      l
        .start()
        .implement(A, "opencode", "completed")
        .review(A, "opencode", "REVISION_REQUIRED", findings("round 1"))
        .implement(A, "cc-glm", { state: "stalled", exit_code: null, contract_error: null }),
    expect: {
      items: {
        [A]: { status: "pending", reason_code: "stalled", chain_index: 2, carry: { findings: findings("round 1"), failure: "stalled: job ended stalled" } },
      },
    },
  },
];

describeRows({ "implement and review": happy, revisions, "failed attempts": failures });
