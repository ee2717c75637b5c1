import type { AttemptUsage } from "../../src/core/index.js";
import { implContract } from "../helpers/events.js";
import { describeRows, type Row } from "./table.js";

// Issue #11: quota that ends (max_quota_waits across an item's chain) and budgets that stop an
// item from being dispatched again, whatever way its last attempt ended.

const A = "bd-a1";
const B = "bd-b2";
const usage = (tokens: number, cost_usd: number | null = null): AttemptUsage => ({ input_tokens: tokens, output_tokens: 0, cache_read_tokens: 0, cost_usd });
const quota = { state: "exited_err", exit_code: 1, runner_reason: "provider_quota_exhausted", cli_error: "429 Too Many Requests" } as const;
const crash = { state: "exited_err", exit_code: 1, runner_reason: "exited_err", cli_error: "Error: boom" } as const;
const ONE_PROVIDER = { retry_chain: ["codex", "blocked"], provider_cooldown_minutes: 0 };

const quotaRows: Row[] = [
  {
    name: "a provider that keeps answering 429 ends the item blocked provider_quota_exhausted after max_quota_waits hits in a row",
    ledger: { policy: { ...ONE_PROVIDER, max_quota_waits: 3 } },
    build: (l) => l.start().implement(A, "codex", quota).implement(A, "codex", quota, { quota: "waited" }).implement(A, "codex", quota, { quota: "waited" }),
    expect: {
      items: {
        [A]: {
          status: "blocked",
          reason_code: "provider_quota_exhausted",
          charged_attempts: 0,
          history: [{ charged: false }, { charged: false }, { charged: false }],
        },
      },
      wave: { status: "completed" },
    },
  },
  {
    name: "below max_quota_waits the item waits for the cool-down and is dispatched again on the same provider",
    ledger: { policy: { ...ONE_PROVIDER, max_quota_waits: 3 } },
    build: (l) => l.start().implement(A, "codex", quota).implement(A, "codex", quota, { quota: "waited" }),
    expect: {
      items: { [A]: { status: "pending", reason_code: "provider_quota_exhausted" } },
      plan: { intents: [{ item_id: A, phase: "implement", attempt: 3, provider: "codex", quota: "waited" }] },
    },
  },
  {
    name: "the outcome's error of a quota hit is the CLI's own line, not a contract error",
    ledger: { policy: { ...ONE_PROVIDER, max_quota_waits: 3 } },
    build: (l) => l.start().implement(A, "codex", quota),
    expect: {
      effects: [{ type: "release_lease" }, { type: "write_outcome", outcome: { result: "quota", error: "429 Too Many Requests" } }],
    },
  },
  {
    name: "a crash or a stall: the outcome's error is the CLI's own last line, not the missing contract",
    ledger: { policy: { retry_chain: ["codex", "codex", "blocked"] } },
    build: (l) =>
      l
        .start()
        .implement(A, "codex", { ...crash, contract_error: "contract_missing: no contract file" })
        .implement(
          A,
          "codex",
          { state: "stalled", exit_code: null, cli_error: "Reconnecting... 1/5", contract_error: "contract_missing: none" },
          { chain_index: 1 },
        ),
    expect: {
      items: { [A]: { history: [{ reason_code: "exited_err" }, { reason_code: "stalled" }] } },
      effects: [
        { type: "stop_job" },
        { type: "release_lease" },
        { type: "write_outcome", outcome: { result: "failed", reason_code: "stalled", error: "Reconnecting... 1/5" } },
        { type: "release_claim" },
        { type: "tracker_comment" },
      ],
    },
  },
  {
    name: "an operator's stop between quota hits neither counts nor breaks the run of hits",
    ledger: { policy: { ...ONE_PROVIDER, max_quota_waits: 3 } },
    build: (l) =>
      l
        .start()
        .implement(A, "codex", quota)
        .implement(A, "codex", { state: "exited_err", exit_code: 143, runner_reason: "stopped_by_operator" }, { quota: "waited" })
        // The rerun after an operator's stop did not wait for quota: it is not marked waited.
        .implement(A, "codex", quota),
    expect: { items: { [A]: { status: "pending", reason_code: "provider_quota_exhausted" } } },
  },
  {
    name: "a counted failure breaks the run: quota hits before it do not count",
    ledger: { policy: { retry_chain: ["codex", "codex", "blocked"], provider_cooldown_minutes: 0, max_quota_waits: 2 } },
    build: (l) => l.start().implement(A, "codex", quota).implement(A, "codex", crash, { quota: "waited" }).implement(A, "codex", quota, { chain_index: 1 }),
    expect: { items: { [A]: { status: "pending", reason_code: "provider_quota_exhausted", charged_attempts: 1 } } },
  },
];

const budgetRows: Row[] = [
  {
    name: "a failed attempt that took the item over its token budget is not retried: blocked budget_exhausted",
    ledger: { policy: { retry_chain: ["codex", "codex", "blocked"], budget: { max_tokens_per_item: 1000 } } },
    build: (l) => l.start().implement(A, "codex", { ...crash, usage: usage(1500) }),
    expect: {
      items: { [A]: { status: "blocked", reason_code: "budget_exhausted", history: [{ reason_code: "exited_err" }] } },
      plan: { intents: [] },
    },
  },
  {
    name: "a quota hit that took the item over its dollar budget is not retried either",
    ledger: { policy: { ...ONE_PROVIDER, budget: { max_usd_per_item: 0.5 } } },
    build: (l) => l.start().implement(A, "codex", { ...quota, usage: usage(10, 0.75) }),
    expect: { items: { [A]: { status: "blocked", reason_code: "budget_exhausted" } }, plan: { intents: [] } },
  },
  {
    name: "a failed attempt under the budget is retried as before",
    ledger: { policy: { retry_chain: ["codex", "codex", "blocked"], budget: { max_tokens_per_item: 1000 } } },
    build: (l) => l.start().implement(A, "codex", { ...crash, usage: usage(400) }),
    expect: { items: { [A]: { status: "pending", reason_code: "exited_err" } }, plan: { intents: [{ item_id: A, attempt: 2 }] } },
  },
  {
    name: "a completed implement over the item budget is not reviewed: blocked budget_exhausted",
    ledger: { policy: { retry_chain: ["codex", "blocked"], budget: { max_tokens_per_item: 1000 } } },
    build: (l) => l.start().implement(A, "codex", { contract: implContract(A, "completed"), usage: usage(1200) }),
    expect: { items: { [A]: { status: "blocked", reason_code: "budget_exhausted" } }, plan: { intents: [] } },
  },
  {
    name: "a job the runner stopped for budget ends the item blocked budget_exhausted with the runner's words",
    ledger: { policy: { retry_chain: ["codex", "codex", "blocked"], budget: { max_tokens_per_item: 1000 } } },
    build: (l) =>
      l.start().implement(A, "codex", {
        state: "exited_err",
        exit_code: 143,
        runner_reason: "budget_exhausted",
        cli_error: "item at 1100 tokens, over budget.max_tokens_per_item 1000",
        usage: usage(1100),
      }),
    expect: {
      items: { [A]: { status: "blocked", reason_code: "budget_exhausted", error: "item at 1100 tokens, over budget.max_tokens_per_item 1000" } },
    },
  },
  {
    name: "a wave over its budget dispatches nothing new: the items not running end budget_exhausted, a running one finishes",
    ledger: { items: [A, B, "bd-c3"], policy: { retry_chain: ["codex", "blocked"], max_parallel: 2, budget: { max_tokens_per_wave: 1000 } } },
    build: (l) =>
      l
        .start()
        .dispatch(A, "implement", "codex")
        .jobStarted(A)
        .dispatch(B, "implement", "codex")
        .jobStarted(B)
        .finished(A, { ...crash, usage: usage(1200) }),
    expect: {
      items: {
        [A]: { status: "blocked", reason_code: "budget_exhausted" },
        [B]: { status: "implementing" },
        "bd-c3": { status: "blocked", reason_code: "budget_exhausted" },
      },
      plan: { intents: [] },
    },
  },
];

const locked = { state: "exited_err", exit_code: 1, runner_reason: "agent_transient_error", cli_error: "database is locked" } as const;

const transientRows: Row[] = [
  {
    name: "a CLI that tripped on its own locked store runs again at once on the same provider, uncounted",
    ledger: { policy: { retry_chain: ["opencode", "blocked"] } },
    build: (l) => l.start().implement(A, "opencode", locked),
    expect: {
      items: { [A]: { status: "pending", reason_code: "agent_transient_error", charged_attempts: 0, history: [{ charged: false }] } },
      effects: [
        { type: "release_lease" },
        { type: "write_outcome", outcome: { result: "error", reason_code: "agent_transient_error", error: "database is locked" } },
      ],
      plan: { intents: [{ item_id: A, phase: "implement", attempt: 2, provider: "opencode" }] },
    },
  },
  {
    name: "the second transient fault in a row is uncounted too, and the rerun can still be approved",
    ledger: { policy: { retry_chain: ["opencode", "blocked"] } },
    build: (l) =>
      l.start().implement(A, "opencode", locked).implement(A, "opencode", locked).implement(A, "opencode", "completed").review(A, "opencode", "APPROVED"),
    expect: { items: { [A]: { status: "approved", charged_attempts: 1 } } },
  },
  {
    name: "a third transient fault in a row counts like any failed run: a CLI always locked cannot loop",
    ledger: { policy: { retry_chain: ["opencode", "blocked"] } },
    build: (l) => l.start().implement(A, "opencode", locked).implement(A, "opencode", locked).implement(A, "opencode", locked),
    expect: {
      items: {
        [A]: {
          status: "blocked",
          reason_code: "retry_chain_exhausted",
          charged_attempts: 1,
          history: [{ charged: false }, { charged: false }, { reason_code: "agent_transient_error" }],
        },
      },
    },
  },
  {
    name: "a transient fault of the reviewer reruns the review, and the implement stays counted once",
    ledger: { policy: { retry_chain: ["opencode", "blocked"] } },
    build: (l) => l.start().implement(A, "opencode", "completed").review(A, "opencode", locked),
    expect: {
      items: { [A]: { status: "reviewing", reason_code: "agent_transient_error", charged_attempts: 1 } },
      plan: { intents: [{ item_id: A, phase: "review", provider: "opencode" }] },
    },
  },
];

describeRows({ "quota that ends (issue #11)": quotaRows, "budgets (issue #11)": budgetRows, "transient CLI faults": transientRows });
