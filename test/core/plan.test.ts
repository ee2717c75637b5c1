import { addMinutes } from "../../src/core/time.js";
import { seed } from "../helpers/events.js";
import { describeRows, type Row } from "./table.js";

// planDispatch and the transitions that feed it: preflight skips, dependencies, provider quota,
// reviewer choice, and the parallelism caps.

const A = "bd-a1";
const B = "bd-b2";
const C = "bd-c3";
const D = "bd-d4";
const QUOTA = { state: "exited_err", exit_code: 1, runner_reason: "provider_quota_exhausted", contract: null, contract_error: null } as const;

const preflight: Row[] = [
  {
    name: "the first chain provider failed preflight -> intent on the second, with skipped: [first]",
    build: (l) => l.preflight({ opencode: "opencode_auth_missing", "cc-glm": true }).start(),
    expect: {
      wave: { status: "running", reason_code: "preflight_degraded", next_action: "monitor_wave_until_terminal" },
      plan: { intents: [{ item_id: A, phase: "implement", attempt: 1, provider: "cc-glm", chain_index: 1, quota: null, skipped: ["opencode"] }] },
    },
  },
  {
    name: "the skipped provider is recorded on the attempt",
    build: (l) =>
      l
        .preflight({ opencode: "opencode_auth_missing", "cc-glm": true })
        .start()
        .dispatch(A, "implement", "cc-glm", { skipped: ["opencode"] }),
    expect: { items: { [A]: { chain_index: 1, history: [{ provider: "cc-glm", skipped: ["opencode"] }] } } },
  },
  {
    name: "a degraded wave that finishes is completed, not degraded",
    build: (l) =>
      l
        .preflight({ opencode: "opencode_auth_missing", "cc-glm": true })
        .start()
        .implement(A, "cc-glm", "blocked", { skipped: ["opencode"] }),
    expect: { wave: { status: "completed", reason_code: "wave_completed" } },
  },
  {
    name: "every chain provider failed preflight -> wave failed no_provider_available",
    build: (l) => l.preflight({ opencode: "opencode_auth_missing", "cc-glm": "cc-glm_auth_missing" }),
    expect: {
      wave: {
        status: "failed",
        reason_code: "no_provider_available",
        next_action: "inspect_wave_error_and_recover",
        error: "no provider of the retry chain passed preflight (opencode: opencode_auth_missing, cc-glm: cc-glm_auth_missing)",
      },
      items: { [A]: { status: "pending" } },
      plan: { intents: [] },
    },
  },
  {
    name: "a late preflight with every provider failing leaves a cancelled wave cancelled",
    build: (l) => l.start().dispatch(A, "implement", "opencode").cancel().preflight({ opencode: "opencode_auth_missing", "cc-glm": "cc-glm_auth_missing" }),
    expect: (l) => ({ wave: { status: "cancelled", reason_code: "wave_cancelled", error: null, completed_at: l.atOf("wave_cancelled") }, effects: [] }),
  },
  {
    name: "... and a completed wave completed",
    build: (l) => l.start().implement(A, "opencode", "blocked").preflight({ opencode: "opencode_auth_missing", "cc-glm": "cc-glm_auth_missing" }),
    expect: (l) => ({ wave: { status: "completed", reason_code: "wave_completed", error: null, completed_at: l.atOf("job_finished") }, effects: [] }),
  },
  {
    name: "a preflight on resume ends items whose remaining chain has only failed providers",
    ledger: { items: [A, B] },
    build: (l) =>
      l.start().implement(A, "opencode", { state: "stalled", exit_code: null }).pause().preflight({ opencode: true, "cc-glm": "cc-glm_auth_missing" }).resume(),
    expect: (l) => ({
      wave: { status: "running", reason_code: "preflight_degraded" },
      items: { [A]: { status: "blocked", reason_code: "retry_chain_exhausted", completed_at: l.atOf("preflight_recorded") }, [B]: { status: "pending" } },
      plan: { intents: [{ item_id: B, provider: "opencode", skipped: [] }] },
    }),
  },
  {
    name: "a preflight that leaves no allowed reviewer ends a reviewing item no_review_provider",
    ledger: { policy: { review_must_differ: true } },
    build: (l) => l.start().implement(A, "opencode", "completed").preflight({ opencode: true, "cc-glm": "cc-glm_auth_missing" }),
    expect: { items: { [A]: { status: "blocked", reason_code: "no_review_provider" } }, wave: { status: "completed" } },
  },
  {
    name: "a failed reviewer is passed over for the review",
    ledger: { policy: { review_provider: "claude-code" } },
    build: (l) => l.preflight({ "claude-code": "claude-code_auth_missing", opencode: true, "cc-glm": true }).start().implement(A, "opencode", "completed"),
    expect: { plan: { intents: [{ item_id: A, phase: "review", provider: "opencode" }] } },
  },
];

const dependencies: Row[] = [
  {
    name: "a dependent is not planned until its dependency is approved",
    ledger: { items: [seed(A), seed(B, [A]), seed(C)] },
    build: (l) => l.start(),
    expect: { items: { [B]: { depends_on: [A] } }, plan: { intents: [{ item_id: A }, { item_id: C }] } },
  },
  {
    name: "nor while the dependency is in review",
    ledger: { items: [seed(A), seed(B, [A])] },
    build: (l) => l.start().implement(A, "opencode", "completed"),
    expect: { plan: { intents: [{ item_id: A, phase: "review" }] } },
  },
  {
    name: "once the dependency is approved the dependent is planned",
    ledger: { items: [seed(A), seed(B, [A])] },
    build: (l) => l.start().implement(A, "opencode", "completed").review(A, "opencode", "APPROVED"),
    expect: { wave: { status: "running" }, plan: { intents: [{ item_id: B, phase: "implement", attempt: 1, provider: "opencode" }] } },
  },
  {
    name: "a dependency ending blocked blocks its dependents, transitively",
    ledger: { items: [seed(A), seed(B, [A]), seed(C, [B]), seed(D)] },
    build: (l) => l.start().implement(A, "opencode", "blocked"),
    expect: {
      wave: { status: "running" },
      items: {
        [A]: { status: "blocked", reason_code: "implement_reported_blocked" },
        [B]: {
          status: "blocked",
          reason_code: `dependency_blocked:${A}`,
          next_action: "resolve_dependency_then_start_new_wave",
          error: `dependency ${A} was not approved`,
        },
        [C]: { status: "blocked", reason_code: `dependency_blocked:${B}` },
        [D]: { status: "pending" },
      },
      stats: { blocked: 3, pending: 1 },
      plan: { intents: [{ item_id: D }] },
    },
  },
  {
    name: "a dependency failed by the shell blocks its dependent and completes the wave",
    ledger: { items: [seed(A), seed(B, [A])] },
    build: (l) => l.start().settled(A, "failed", "worktree_ambiguous:/tmp/agents/bd-a1/x,/tmp/agents/bd-a1/y"),
    expect: { wave: { status: "completed" }, items: { [B]: { status: "blocked", reason_code: `dependency_blocked:${A}` } } },
  },
  {
    name: "a dependent of two items waits for both",
    ledger: { items: [seed(A), seed(B), seed(C, [A, B])] },
    build: (l) => l.start().implement(A, "opencode", "completed").review(A, "opencode", "APPROVED"),
    expect: { plan: { intents: [{ item_id: B }] } },
  },
  {
    name: "dependencies on itself or on items outside the wave are dropped",
    ledger: { items: [seed(A, [A, "bd-zz9"])] },
    build: (l) => l.start(),
    expect: { items: { [A]: { depends_on: [] } }, plan: { intents: [{ item_id: A }] } },
  },
];

const quota: Row[] = [
  {
    name: "implement quota error: not charged, provider cools down, item pending again",
    build: (l) => l.start().implement(A, "opencode", QUOTA),
    expect: (l) => ({
      wave: { status: "running", cooldowns: { opencode: addMinutes(l.atOf("job_finished"), 15) } },
      items: {
        [A]: {
          status: "pending",
          reason_code: "provider_quota_exhausted",
          attempt: 1,
          chain_index: 0,
          charged_attempts: 0,
          history: [{ charged: false, reason_code: "provider_quota_exhausted" }],
        },
      },
      effects: [
        { type: "release_lease", item_id: A, attempt: 1 },
        { type: "write_outcome", outcome: { result: "quota", reason_code: "provider_quota_exhausted" } },
      ],
      plan: {
        in_minutes: 1,
        intents: [{ item_id: A, phase: "implement", attempt: 2, provider: "cc-glm", chain_index: 1, quota: "fallback", skipped: [] }],
        wake_at: null,
      },
    }),
  },
  {
    name: "quota with no later provider: nothing planned until the cooldown ends, wake_at says when",
    ledger: { policy: { retry_chain: ["opencode", "blocked"] } },
    build: (l) => l.start().implement(A, "opencode", QUOTA),
    expect: (l) => ({ plan: { in_minutes: 1, intents: [], wake_at: addMinutes(l.atOf("job_finished"), 15) } }),
  },
  {
    name: "after the cooldown the same provider is used again (quota: waited)",
    ledger: { policy: { retry_chain: ["opencode", "blocked"] } },
    build: (l) => l.start().implement(A, "opencode", QUOTA).advance(16),
    expect: { plan: { intents: [{ item_id: A, attempt: 2, provider: "opencode", chain_index: 0, quota: "waited" }], wake_at: null } },
  },
  {
    name: "the waited attempt is recorded and runs normally",
    ledger: { policy: { retry_chain: ["opencode", "blocked"] } },
    build: (l) => l.start().implement(A, "opencode", QUOTA).advance(16).implement(A, "opencode", "completed", { quota: "waited" }),
    expect: { items: { [A]: { status: "reviewing", attempt: 2, charged_attempts: 1, history: [{ charged: false }, { quota: "waited", charged: true }] } } },
  },
  {
    name: "the fallback attempt is recorded with quota: fallback",
    build: (l) => l.start().implement(A, "opencode", QUOTA).advance(1).dispatch(A, "implement", "cc-glm", { quota: "fallback" }),
    expect: {
      items: {
        [A]: {
          status: "implementing",
          attempt: 2,
          provider: "cc-glm",
          chain_index: 1,
          history: [
            { provider: "opencode", charged: false },
            { provider: "cc-glm", quota: "fallback" },
          ],
        },
      },
    },
  },
  {
    name: "quota errors do not count against max_attempts",
    ledger: { policy: { retry_chain: ["opencode", "cc-glm", "claude-code", "gemini", "blocked"], max_attempts: 2 } },
    build: (l) =>
      l
        .start()
        .implement(A, "opencode", QUOTA)
        .implement(A, "cc-glm", { state: "stalled", exit_code: null }, { quota: "fallback" })
        .implement(A, "claude-code", { state: "stalled", exit_code: null }),
    expect: { items: { [A]: { status: "blocked", reason_code: "max_attempts_exceeded", attempt: 3, charged_attempts: 2 } } },
  },
  {
    name: "a second item is also routed around the cooling provider",
    ledger: { items: [A, B] },
    build: (l) => l.start().dispatch(B, "implement", "opencode").implement(A, "opencode", QUOTA),
    expect: { plan: { in_minutes: 2, intents: [{ item_id: A, provider: "cc-glm", quota: "fallback" }] } },
  },
  {
    name: "review quota error: still reviewing, review planned on another provider",
    build: (l) => l.start().implement(A, "opencode", "completed").review(A, "opencode", QUOTA),
    expect: (l) => ({
      wave: { cooldowns: { opencode: addMinutes(l.atOf("job_finished"), 15) } },
      items: { [A]: { status: "reviewing", reason_code: "provider_quota_exhausted", attempt: 1, charged_attempts: 1, run_instance: null } },
      plan: { in_minutes: 1, intents: [{ item_id: A, phase: "review", attempt: 1, provider: "cc-glm", quota: "fallback" }] },
    }),
  },
  {
    name: "review quota with the only reviewer cooling: wait, then review with quota: waited",
    ledger: { policy: { review_provider: "claude-code", review_must_differ: true, retry_chain: ["opencode", "blocked"] } },
    build: (l) => l.start().implement(A, "opencode", "completed").review(A, "claude-code", QUOTA),
    expect: (l) => ({ plan: { in_minutes: 1, intents: [], wake_at: addMinutes(l.atOf("job_finished"), 15) } }),
  },
  {
    name: "... and after the cooldown the same reviewer is used (quota: waited)",
    ledger: { policy: { review_provider: "claude-code", review_must_differ: true, retry_chain: ["opencode", "blocked"] } },
    build: (l) => l.start().implement(A, "opencode", "completed").review(A, "claude-code", QUOTA).advance(20),
    expect: { plan: { intents: [{ item_id: A, phase: "review", attempt: 1, provider: "claude-code", quota: "waited" }] } },
  },
];

const reviewer: Row[] = [
  {
    name: "review_must_differ: the review goes to a provider other than the implementer",
    ledger: { policy: { review_must_differ: true } },
    build: (l) => l.start().implement(A, "opencode", "completed"),
    expect: { plan: { intents: [{ item_id: A, phase: "review", attempt: 1, provider: "cc-glm" }] } },
  },
  {
    name: "review_must_differ after a fallback implementer: the first chain provider reviews",
    ledger: { policy: { review_must_differ: true } },
    build: (l) => l.start().implement(A, "opencode", "failed").implement(A, "cc-glm", "completed"),
    expect: { plan: { intents: [{ item_id: A, phase: "review", attempt: 2, provider: "opencode", chain_index: 1 }] } },
  },
  {
    name: "an explicit review_provider reviews",
    ledger: { policy: { review_provider: "claude-code" } },
    build: (l) => l.start().implement(A, "opencode", "completed"),
    expect: { plan: { intents: [{ item_id: A, phase: "review", provider: "claude-code" }] } },
  },
  {
    name: "review_must_differ with the implementer as the only provider -> blocked no_review_provider",
    ledger: { policy: { review_must_differ: true, retry_chain: ["opencode", "blocked"] } },
    build: (l) => l.start().implement(A, "opencode", "completed"),
    expect: {
      items: { [A]: { status: "blocked", reason_code: "no_review_provider" } },
      effects: [{ type: "release_lease" }, { type: "write_outcome", outcome: { result: "success" } }, { type: "release_claim" }, { type: "tracker_comment" }],
    },
  },
];

const FIVE = [A, B, C, D, "bd-e5"];
const capacity: Row[] = [
  {
    name: "max_parallel caps the plan",
    ledger: { items: FIVE, policy: { max_parallel: 2 } },
    build: (l) => l.start(),
    expect: { plan: { intents: [{ item_id: A }, { item_id: B }] } },
  },
  {
    name: "running jobs use up max_parallel",
    ledger: { items: FIVE, policy: { max_parallel: 2 } },
    build: (l) => l.start().dispatch(A, "implement", "opencode"),
    expect: { plan: { intents: [{ item_id: B }] } },
  },
  {
    name: "a full wave plans nothing",
    ledger: { items: FIVE, policy: { max_parallel: 2 } },
    build: (l) => l.start().dispatch(A, "implement", "opencode").dispatch(B, "implement", "opencode"),
    expect: { plan: { intents: [] } },
  },
  {
    name: "a finished job frees its slot",
    ledger: { items: FIVE, policy: { max_parallel: 2 } },
    build: (l) => l.start().dispatch(A, "implement", "opencode").dispatch(B, "implement", "opencode").finished(B, { contract: null }),
    expect: { plan: { intents: [{ item_id: B, attempt: 2, provider: "cc-glm" }] } },
  },
  {
    name: "per-provider max_parallel: items wait for their provider instead of spending the next chain entry",
    ledger: { items: FIVE, policy: { provider_max_parallel: { opencode: 1 } } },
    build: (l) => l.start(),
    expect: { plan: { intents: [{ item_id: A, provider: "opencode" }] } },
  },
  {
    name: "per-provider max_parallel counts running jobs",
    ledger: { items: FIVE, policy: { provider_max_parallel: { opencode: 1 } } },
    build: (l) => l.start().dispatch(A, "implement", "opencode"),
    expect: { plan: { intents: [] } },
  },
  {
    name: "per-provider cap on the first reviewer: the review goes to the next candidate",
    ledger: { items: [A, B], policy: { provider_max_parallel: { opencode: 1 } } },
    build: (l) =>
      l.start().implement(A, "opencode", { state: "stalled", exit_code: null }).dispatch(B, "implement", "opencode").implement(A, "cc-glm", "completed"),
    expect: { plan: { intents: [{ item_id: A, phase: "review", attempt: 2, provider: "cc-glm", quota: null }] } },
  },
  {
    name: "reviews are planned before new implements",
    ledger: { items: [B, A], policy: { max_parallel: 1 } },
    // With one slot the story has to dispatch A out of plan order to get it to review first.
    planned: false,
    build: (l) => l.start().implement(A, "opencode", "completed"),
    expect: { plan: { intents: [{ item_id: A, phase: "review" }] } },
  },
  {
    name: "reviews first, then implements in item order, up to max_parallel",
    ledger: { items: [C, B, A], policy: { max_parallel: 3 } },
    build: (l) => l.start().implement(A, "opencode", "completed"),
    expect: {
      plan: {
        intents: [
          { item_id: A, phase: "review" },
          { item_id: C, phase: "implement" },
          { item_id: B, phase: "implement" },
        ],
      },
    },
  },
];

describeRows({ preflight, dependencies, "provider quota": quota, "reviewer choice": reviewer, parallelism: capacity });
