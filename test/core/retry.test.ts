import { describe, expect, test } from "vitest";
import { chainProviders, nextAttempt, reviewCandidates, usableChainIndex } from "../../src/core/retry.js";
import { itemNextAction, waveNextAction, type ItemStatus, type ProviderPreflight, type WaveStatus } from "../../src/core/index.js";
import { DEFAULT_POLICY } from "../helpers/events.js";

// The retry policy and the next_action maps on their own, as tables.

const bad: ProviderPreflight = { ok: false, reason_code: "opencode_auth_missing" };
const good: ProviderPreflight = { ok: true, reason_code: null };
const CHAIN4 = ["opencode", "cc-glm", "claude-code", "blocked"];
type Pre = Record<string, ProviderPreflight>;

describe("usableChainIndex", () => {
  test.each<{ chain: string[]; from: number; pre: Pre; want: number | null }>([
    { chain: CHAIN4, from: 0, pre: {}, want: 0 },
    { chain: CHAIN4, from: 1, pre: {}, want: 1 },
    { chain: CHAIN4, from: 3, pre: {}, want: null },
    { chain: CHAIN4, from: 0, pre: { opencode: bad }, want: 1 },
    { chain: CHAIN4, from: 0, pre: { opencode: bad, "cc-glm": bad, "claude-code": good }, want: 2 },
    { chain: CHAIN4, from: 1, pre: { "cc-glm": bad, "claude-code": bad }, want: null },
    { chain: ["opencode", "cc-glm"], from: 2, pre: {}, want: null },
    { chain: ["opencode", "blocked", "cc-glm"], from: 1, pre: {}, want: null },
  ])("$chain from $from -> $want", ({ chain, from, pre, want }) => {
    expect(usableChainIndex(chain, from, pre)).toBe(want);
  });
});

describe("nextAttempt", () => {
  const policy = (max_attempts: number, retry_chain: string[]) => ({ ...DEFAULT_POLICY, max_attempts, retry_chain });
  test.each<{ name: string; max: number; chain: string[]; charged: number; index: number; pre: Pre; want: unknown }>([
    { name: "next provider", max: 3, chain: CHAIN4, charged: 1, index: 0, pre: {}, want: { kind: "retry", chain_index: 1 } },
    {
      name: "skips a provider that failed preflight",
      max: 3,
      chain: CHAIN4,
      charged: 1,
      index: 0,
      pre: { "cc-glm": bad },
      want: { kind: "retry", chain_index: 2 },
    },
    {
      name: "the blocked entry ends the chain",
      max: 9,
      chain: CHAIN4,
      charged: 3,
      index: 2,
      pre: {},
      want: { kind: "exhausted", reason_code: "retry_chain_exhausted" },
    },
    {
      name: "the end of a chain without blocked",
      max: 9,
      chain: ["opencode"],
      charged: 1,
      index: 0,
      pre: {},
      want: { kind: "exhausted", reason_code: "retry_chain_exhausted" },
    },
    {
      name: "charged == max_attempts",
      max: 2,
      chain: CHAIN4,
      charged: 2,
      index: 1,
      pre: {},
      want: { kind: "exhausted", reason_code: "max_attempts_exceeded" },
    },
    { name: "below max_attempts", max: 2, chain: CHAIN4, charged: 1, index: 1, pre: {}, want: { kind: "retry", chain_index: 2 } },
  ])("$name", ({ max, chain, charged, index, pre, want }) => {
    expect(nextAttempt(policy(max, chain), charged, index, pre)).toEqual(want);
  });
});

describe("reviewCandidates", () => {
  test.each([
    { name: "the chain in order", review_provider: null, differ: false, implementer: "opencode", want: ["opencode", "cc-glm"] },
    { name: "must differ drops the implementer", review_provider: null, differ: true, implementer: "opencode", want: ["cc-glm"] },
    { name: "explicit reviewer first, no duplicates", review_provider: "cc-glm", differ: false, implementer: "opencode", want: ["cc-glm", "opencode"] },
    {
      name: "explicit reviewer equal to the implementer with must differ",
      review_provider: "opencode",
      differ: true,
      implementer: "opencode",
      want: ["cc-glm"],
    },
  ])("$name", ({ review_provider, differ, implementer, want }) => {
    expect(reviewCandidates({ ...DEFAULT_POLICY, review_provider, review_must_differ: differ }, implementer)).toEqual(want);
  });

  test("chainProviders stops at blocked and drops duplicates", () => {
    expect(chainProviders({ ...DEFAULT_POLICY, retry_chain: ["opencode", "cc-glm", "opencode", "blocked", "gemini"] })).toEqual(["opencode", "cc-glm"]);
  });
});

describe("next_action", () => {
  test.each<[WaveStatus, string, string]>([
    ["pending", "wave_pending", "start_or_resume_wave"],
    ["running", "wave_running", "monitor_wave_until_terminal"],
    ["running", "preflight_degraded", "monitor_wave_until_terminal"],
    ["paused", "wave_paused_signal", "run_dx_batch_resume"],
    ["failed", "exec_saturation", "run_dx_runner_prune_then_dx_batch_doctor"],
    ["failed", "doctor_critical_state_missing", "run_dx_batch_doctor_and_resolve_critical"],
    ["failed", "no_provider_available", "inspect_wave_error_and_recover"],
    ["cancelled", "wave_cancelled", "review_outcomes_before_restart"],
    ["completed", "wave_completed", "review_report_and_close_items"],
  ])("wave %s (%s) -> %s", (status, reason, want) => {
    expect(waveNextAction(status, reason)).toBe(want);
  });

  test.each<[ItemStatus, string, string]>([
    ["pending", "pending", "wait_for_wave"],
    ["implementing", "implementing", "wait_for_wave"],
    ["reviewing", "reviewing", "wait_for_wave"],
    ["revision_required", "revision_required", "wait_for_wave"],
    ["approved", "approved", "review_and_close_item"],
    ["approved", "approved_no_review", "review_and_close_item"],
    ["blocked", "retry_chain_exhausted", "inspect_findings_then_start_new_wave"],
    ["failed", "worktree_missing:/tmp/agents/bd-a1", "fix_worktree_then_start_new_wave"],
    ["failed", "canonical_worktree_forbidden:/work", "fix_worktree_then_start_new_wave"],
    ["blocked", "dependency_blocked:bd-a1", "resolve_dependency_then_start_new_wave"],
    ["blocked", "item_claimed_by_other_wave:wave-2", "wait_for_other_wave_or_cancel_it"],
    ["cancelled", "cancelled", "inspect_findings_then_start_new_wave"],
  ])("item %s (%s) -> %s", (status, reason, want) => {
    expect(itemNextAction(status, reason)).toBe(want);
  });
});
