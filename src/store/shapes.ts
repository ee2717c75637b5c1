import type * as TB from "@sinclair/typebox";
import type { Static, TLiteral, TSchema, TUnion } from "@sinclair/typebox";
import type { Contract, Finding } from "../core/contract.js";
import type { EventName, WaveEvent } from "../core/events.js";
import type { WavePolicy } from "../core/policy.js";
import type { ResolvedConfig } from "../config/types.js";
import { DeliveryReason, ItemNextAction, NextAction, type ItemReason, type RunnerReason, type TrackerReason, type WaveReason } from "../core/reasons.js";
import type { AttemptRecord, ItemState, WaveState } from "../core/state.js";
import { ITEM_STATUSES, JobState, Phase, WaveStatus } from "../core/status.js";

// The shapes of what the store reads back from disk: ledger lines, the wave snapshot, the
// controller lock and exclusive-create tickets. They are checked at the boundary (SPEC §5: a bad
// line stops the load), so nothing downstream trusts a cast. The schemas mirror the interfaces in
// src/core; the type assertions at the bottom fail the build when the two drift apart, in either
// direction.
//
// They are built from a TypeBox builder passed in, not imported: this module is on the read path
// of every command, TypeBox is some 200 modules, and the checks that run are precompiled
// (checks.generated.ts, written by scripts/gen-schemas.mjs from these schemas). TypeBox is loaded
// only to generate them, and to word why a value was refused (src/store/schema.ts).

/** TypeBox's `Type` builder (the ES or CommonJS build: the schemas they build are the same). */
export type TypeBuilder = typeof TB.Type;

export function storeShapes(Type: TypeBuilder) {
  function literals<const T extends string>(values: readonly T[]): TUnion<TLiteral<T>[]> {
    return Type.Union(values.map((v) => Type.Literal(v)));
  }

  const Str = Type.String();
  const Int = Type.Integer();
  const Num = Type.Number();
  const Bool = Type.Boolean();
  const Null = Type.Null();
  const OrNull = <T extends TSchema>(t: T) => Type.Union([t, Null]);

  const PhaseS = literals(Object.values(Phase));
  const JobStateS = literals(Object.values(JobState));
  const QuotaS = Type.Union([Type.Literal("fallback"), Type.Literal("waited"), Null]);
  // Reasons are typed as the core's closed unions but checked as strings: a ledger written by an
  // older version, with a reason since renamed, still loads and replays exactly as it was recorded.
  const WaveReasonS = Type.Unsafe<WaveReason>(Str);
  const ItemReasonS = Type.Unsafe<ItemReason>(Str);
  const RunnerReasonS = Type.Unsafe<RunnerReason>(Str);
  const TrackerReasonS = Type.Unsafe<TrackerReason>(Str);
  const DeliveryReasonS = literals(Object.values(DeliveryReason));

  const FindingS = Type.Object({
    type: literals(["critical", "major", "minor", "suggestion", "positive"] as const),
    message: Str,
    file: Type.Optional(Str),
    line: Type.Optional(Num),
  });

  const ImplementContractS = Type.Object({
    phase: Type.Literal("implement"),
    beads_id: Str,
    status: literals(["completed", "partial", "failed", "no_op", "blocked"] as const),
    artifacts: Type.Object({
      files_changed: Type.Array(Str),
      commits: Type.Array(Type.Object({ sha: Str, message: Str })),
      tests_passed: Type.Optional(Bool),
      tests_output: Type.Optional(Str),
    }),
    summary: Type.Optional(Str),
    findings: Type.Optional(Type.Array(FindingS)),
    timestamp: Str,
    duration_sec: Type.Optional(Num),
  });

  const ReviewContractS = Type.Object({
    phase: Type.Literal("review"),
    beads_id: Str,
    verdict: literals(["APPROVED", "REVISION_REQUIRED", "BLOCKED"] as const),
    findings: Type.Array(FindingS),
    summary: Type.Optional(Str),
    coverage: Type.Optional(Str),
    timestamp: Str,
    reviewer: Type.Optional(Str),
  });

  const ContractS = Type.Union([ImplementContractS, ReviewContractS]);

  const BudgetS = Type.Object({
    max_tokens_per_item: Type.Optional(OrNull(Num)),
    max_usd_per_item: Type.Optional(OrNull(Num)),
    max_tokens_per_wave: Type.Optional(OrNull(Num)),
    max_usd_per_wave: Type.Optional(OrNull(Num)),
  });
  const RangeS = Type.Object({ from: OrNull(Str), to: OrNull(Str) });
  const UsageS = Type.Object({ input_tokens: OrNull(Num), output_tokens: OrNull(Num), cache_read_tokens: OrNull(Num), cost_usd: OrNull(Num) });

  const PolicyS = Type.Object({
    max_parallel: Int,
    max_attempts: Int,
    require_review: Bool,
    retry_chain: Type.Array(Str),
    review_provider: OrNull(Str),
    review_must_differ: Bool,
    provider_cooldown_minutes: Num,
    provider_max_parallel: Type.Record(Str, Num),
    max_quota_waits: Type.Optional(Num),
    budget: Type.Optional(BudgetS),
    redo: Type.Optional(Bool),
  });

  // The resolved configuration recorded in wave_created (src/config/types.ts). Checked without the
  // config file's "no unknown keys" rule: a ledger must stay readable by a later version.
  const ProviderConfigS = Type.Object({
    command: Type.Optional(Type.Array(Str)),
    stdin: Type.Optional(Type.Union([Type.Literal("prompt"), Type.Literal("none")])),
    env: Type.Optional(Type.Record(Str, Str)),
    preflight: Type.Optional(Type.Array(Str)),
    model: Type.Optional(Str),
    max_parallel: Type.Optional(Num),
  });
  const Config = Type.Object({
    artifact_dir: Str,
    runner_log_dir: Str,
    workspace_root: Str,
    allowed_prefixes: Type.Array(Str),
    protected_paths: Type.Array(Str),
    repo: OrNull(Str),
    base: Str,
    max_parallel: Num,
    max_attempts: Num,
    stall_minutes: Num,
    lease_ttl_minutes: Num,
    exec_process_cap: Num,
    require_review: Bool,
    max_runtime_minutes: Num,
    review_must_differ: Bool,
    provider_cooldown_minutes: Num,
    max_log_mb: Num,
    retry_chain: Type.Array(Str),
    review_provider: OrNull(Str),
    runner: Type.Union([
      Type.Object({ type: Type.Literal("builtin") }),
      Type.Object({ type: Type.Literal("dx-runner"), command: Str }),
      Type.Object({
        type: Type.Literal("bullmq"),
        redis_url: Str,
        queue_prefix: Type.Optional(Str),
        lock_seconds: Type.Optional(Type.Number()),
        unavailable_minutes: Type.Optional(Type.Number()),
      }),
    ]),
    tracker: Type.Union([
      Type.Object({ type: Type.Literal("beads"), command: Type.Optional(Str), close_on_approve: Type.Optional(Bool) }),
      Type.Object({ type: Type.Literal("file"), path: Str }),
      Type.Object({ type: Type.Literal("none") }),
    ]),
    providers: Type.Record(Str, ProviderConfigS),
    prompts: Type.Object({ implement: Type.Optional(Str), review: Type.Optional(Str) }),
    notify: Type.Optional(Type.Object({ command: Type.Optional(Type.Array(Str)), webhook: Type.Optional(Str) })),
    pr: Type.Optional(
      Type.Object({
        remote: Type.Optional(Str),
        open: Type.Optional(Type.Union([Type.Literal("none"), Type.Literal("gh")])),
        draft: Type.Optional(Bool),
        base: Type.Optional(Str),
      }),
    ),
    quota_retries_before_stop: Type.Optional(Num),
    max_quota_waits: Type.Optional(Num),
    budget: Type.Optional(BudgetS),
  });
  const Base = { seq: Int, at: Str, epoch: Type.Optional(Int) };

  const WaveCreatedS = Type.Object({
    ...Base,
    event: Type.Literal("wave_created"),
    wave_id: Str,
    wave_dir: Str,
    config: Config,
    policy: PolicyS,
    items: Type.Array(
      Type.Object({
        id: Str,
        title: Str,
        depends_on: Type.Array(Str),
        carry: Type.Optional(Type.Object({ findings: Type.Array(FindingS), failure: OrNull(Str), summary: OrNull(Str) })),
      }),
    ),
  });
  const PreflightRecordedS = Type.Object({
    ...Base,
    event: Type.Literal("preflight_recorded"),
    providers: Type.Record(Str, Type.Object({ ok: Bool, reason_code: OrNull(RunnerReasonS) })),
  });
  const WaveStartedS = Type.Object({ ...Base, event: Type.Literal("wave_started"), controller_pid: Int, host: Str });
  const WaveResumedS = Type.Object({ ...Base, event: Type.Literal("wave_resumed"), controller_pid: Int, host: Str });
  const ControllerAcquiredS = Type.Object({ ...Base, event: Type.Literal("controller_acquired"), epoch: Int, pid: Int, host: Str });
  const WavePausedS = Type.Object({ ...Base, event: Type.Literal("wave_paused"), reason_code: WaveReasonS });
  const WaveFailedS = Type.Object({ ...Base, event: Type.Literal("wave_failed"), reason_code: WaveReasonS, error: Str });
  const WaveCancelledS = Type.Object({ ...Base, event: Type.Literal("wave_cancelled"), reason_code: WaveReasonS });
  const ItemDispatchedS = Type.Object({
    ...Base,
    event: Type.Literal("item_dispatched"),
    item_id: Str,
    phase: PhaseS,
    attempt: Int,
    provider: Str,
    chain_index: Int,
    run_instance: Str,
    lease_key: Str,
    worktree: Str,
    base_commit: OrNull(Str),
    quota: QuotaS,
    skipped: Type.Array(Str),
    head_at_dispatch: Type.Optional(OrNull(Str)),
    review_range: Type.Optional(RangeS),
  });
  const AutoCommitS = Type.Object({
    ...Base,
    event: Type.Literal("auto_commit"),
    item_id: Str,
    phase: PhaseS,
    attempt: Int,
    provider: Str,
    run_instance: Str,
    sha: Str,
    files: Type.Array(Str),
  });
  const JobStartedS = Type.Object({
    ...Base,
    event: Type.Literal("job_started"),
    item_id: Str,
    phase: PhaseS,
    attempt: Int,
    provider: Str,
    run_instance: Str,
    pid: Int,
    pgid: Int,
    started_at: Str,
    log_path: Str,
  });
  const JobFinishedS = Type.Object({
    ...Base,
    event: Type.Literal("job_finished"),
    item_id: Str,
    phase: PhaseS,
    attempt: Int,
    provider: Str,
    run_instance: Str,
    started_at: OrNull(Str),
    state: JobStateS,
    exit_code: OrNull(Int),
    runner_reason: OrNull(RunnerReasonS),
    contract: OrNull(ContractS),
    contract_error: OrNull(Str),
    outcome_path: Str,
    duration_sec: OrNull(Num),
    range: Type.Optional(RangeS),
    cli_error: Type.Optional(OrNull(Str)),
    usage: Type.Optional(UsageS),
    log_path: Type.Optional(OrNull(Str)),
  });
  const AttemptFailedS = Type.Object({
    ...Base,
    event: Type.Literal("attempt_failed"),
    item_id: Str,
    phase: PhaseS,
    attempt: Int,
    provider: Str,
    run_instance: Str,
    reason_code: ItemReasonS,
    error: Str,
    outcome_path: Str,
  });
  const ItemSettledS = Type.Object({
    ...Base,
    event: Type.Literal("item_settled"),
    item_id: Str,
    status: Type.Union([Type.Literal("blocked"), Type.Literal("failed"), Type.Literal("approved")]),
    reason_code: ItemReasonS,
    error: Str,
  });
  const TrackerErrorS = Type.Object({
    ...Base,
    event: Type.Literal("tracker_error"),
    item_id: Str,
    op: literals(["in_progress", "comment", "close"] as const),
    reason_code: TrackerReasonS,
    detail: Str,
  });
  const WaveCompletedS = Type.Object({ ...Base, event: Type.Literal("wave_completed"), reason_code: WaveReasonS, approved: Int, not_approved: Int });
  const WaveNotifiedS = Type.Object({
    ...Base,
    event: Type.Literal("wave_notified"),
    state: Str,
    results: Type.Array(Type.Object({ channel: Type.Union([Type.Literal("command"), Type.Literal("webhook")]), ok: Bool, error: OrNull(Str), attempts: Int })),
  });
  const DeliveryFields = { remote: Str, branch: Str, head: OrNull(Str), pushed: Bool, pr_url: OrNull(Str), error: OrNull(Str) };
  const ItemDeliveredS = Type.Object({ ...Base, event: Type.Literal("item_delivered"), item_id: Str, ...DeliveryFields, reason_code: DeliveryReasonS });

  const LedgerForeignBytesS = Type.Object({
    ...Base,
    event: Type.Literal("ledger_foreign_bytes"),
    file: Str,
    moved_to: Str,
    bytes: Int,
  });

  const AttemptRecordS = Type.Object({
    attempt: Int,
    phase: PhaseS,
    provider: Str,
    run_instance: Str,
    dispatched_at: Str,
    started_at: OrNull(Str),
    completed_at: OrNull(Str),
    state: OrNull(JobStateS),
    reason_code: OrNull(ItemReasonS),
    verdict: OrNull(literals(["APPROVED", "REVISION_REQUIRED", "BLOCKED"] as const)),
    findings: Type.Array(FindingS),
    summary: OrNull(Str),
    outcome_path: OrNull(Str),
    quota: QuotaS,
    skipped: Type.Array(Str),
    charged: Bool,
    range: Type.Optional(RangeS),
    auto_commit: Type.Optional(Str),
    usage: Type.Optional(UsageS),
    log_path: Type.Optional(Str),
    head_at_dispatch: Type.Optional(OrNull(Str)),
  });

  const ItemStateS = Type.Object({
    beads_id: Str,
    title: Str,
    depends_on: Type.Array(Str),
    status: literals(ITEM_STATUSES),
    attempt: Int,
    provider: OrNull(Str),
    run_instance: OrNull(Str),
    lease_key: OrNull(Str),
    phase: OrNull(PhaseS),
    started_at: OrNull(Str),
    completed_at: OrNull(Str),
    verdict: OrNull(literals(["APPROVED", "REVISION_REQUIRED", "BLOCKED"] as const)),
    outcome_path: OrNull(Str),
    error: OrNull(Str),
    reason_code: ItemReasonS,
    next_action: literals(Object.values(ItemNextAction)),
    chain_index: Int,
    charged_attempts: Int,
    worktree: OrNull(Str),
    base_commit: OrNull(Str),
    tracker_error: OrNull(Str),
    implementer: OrNull(Str),
    job: OrNull(Type.Object({ pid: Int, pgid: Int, started_at: Str, log_path: Str })),
    carry: Type.Object({ findings: Type.Array(FindingS), failure: OrNull(Str), summary: OrNull(Str) }),
    history: Type.Array(AttemptRecordS),
    delivery: Type.Optional(Type.Object({ ...DeliveryFields, reason_code: DeliveryReasonS })),
  });

  const StatsS = Type.Object({
    total: Int,
    pending: Int,
    implementing: Int,
    reviewing: Int,
    approved: Int,
    revision_required: Int,
    blocked: Int,
    failed: Int,
    cancelled: Int,
  });

  const WaveStateS = Type.Object({
    version: Type.Literal(1),
    seq: Int,
    epoch: Type.Optional(Int),
    wave_id: Str,
    wave_dir: Str,
    status: literals(Object.values(WaveStatus)),
    reason_code: WaveReasonS,
    next_action: literals(Object.values(NextAction)),
    error: OrNull(Str),
    created_at: Str,
    updated_at: Str,
    started_at: OrNull(Str),
    completed_at: OrNull(Str),
    config: Config,
    policy: PolicyS,
    preflight: Type.Record(Str, Type.Object({ ok: Bool, reason_code: OrNull(RunnerReasonS) })),
    cooldowns: Type.Record(Str, Str),
    items: Type.Array(ItemStateS),
    stats: StatsS,
  });

  const EVENT_SCHEMAS = {
    wave_created: WaveCreatedS,
    preflight_recorded: PreflightRecordedS,
    wave_started: WaveStartedS,
    wave_resumed: WaveResumedS,
    controller_acquired: ControllerAcquiredS,
    wave_paused: WavePausedS,
    wave_failed: WaveFailedS,
    wave_cancelled: WaveCancelledS,
    wave_completed: WaveCompletedS,
    wave_notified: WaveNotifiedS,
    item_dispatched: ItemDispatchedS,
    job_started: JobStartedS,
    auto_commit: AutoCommitS,
    job_finished: JobFinishedS,
    attempt_failed: AttemptFailedS,
    item_settled: ItemSettledS,
    tracker_error: TrackerErrorS,
    item_delivered: ItemDeliveredS,
    ledger_foreign_bytes: LedgerForeignBytesS,
  } as const;

  // Who holds a store file (controller lock, ticket, claim, lease, cancel request): the process,
  // with its start time (a reused pid is not the holder) and its host.
  const ProcessIdentityP = { pid: Type.Integer(), start_time: Type.Union([Type.String(), Type.Null()]), host: Type.String() };

  const ControllerLockS = Type.Object({
    ...ProcessIdentityP,
    started_at: Type.String(),
    heartbeat_at: Type.String(),
    epoch: Type.Optional(Type.Integer({ minimum: 0 })),
    token: Type.String(),
  });

  // An exclusive-create ticket (src/store/exclusive.ts).
  const TicketS = Type.Object({
    ...ProcessIdentityP,
    at_ms: Type.Number(),
    withdrawn: Type.Boolean(),
  });

  // A cancel asked of a controller this host may not signal (src/store/cancel-request.ts).
  const CancelRequestS = Type.Object({
    requested_at: Type.String(),
    by: Type.Object(ProcessIdentityP),
  });

  // The holder named in the tracker's lock file (src/tracker/lock.ts).
  const TrackerLockHolderS = Type.Object({
    pid: Type.Integer(),
    host: Type.String(),
    token: Type.String(),
    start_time: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    acquired_mono: Type.Optional(Type.Object({ boot: Type.String(), ms: Type.Number() })),
  });

  // Read back by src/store/pids.ts.
  const JobPidS = Type.Object({
    pid: Type.Integer({ minimum: 1 }),
    pgid: Type.Integer({ minimum: 1 }),
    wave_id: Type.String(),
    item_id: Type.String(),
    phase: Type.Union([Type.Literal("implement"), Type.Literal("review")]),
    attempt: Type.Integer(),
    run_instance: Type.String(),
    registered_at: Type.String(),
    start_time: Type.Union([Type.String(), Type.Null()]),
    host: Type.Optional(Type.String()),
  });

  // Read back by src/store/claim.ts.
  const ItemClaimS = Type.Object({
    ...ProcessIdentityP,
    wave_id: Type.String(),
    epoch: Type.Optional(Type.Integer()),
    item_id: Type.String(),
    claimed_at: Type.String(),
    token: Type.String(),
  });

  // Read back by src/store/lease.ts.
  const LeaseHolderS = Type.Object({
    ...ProcessIdentityP,
    wave_id: Type.String(),
    item_id: Type.Optional(Type.String()),
    attempt: Type.Optional(Type.Integer()),
    run_instance: Type.Optional(Type.String()),
    epoch: Type.Optional(Type.Integer()),
    acquired_at: Type.String(),
    expires_at: Type.String(),
    acquired_mono: Type.Optional(Type.Object({ boot: Type.String(), ms: Type.Number() })),
    ttl_ms: Type.Optional(Type.Number()),
    token: Type.String(),
  });

  // Read back by src/store/approvals.ts.
  const ApprovalS = Type.Object({ item_id: Type.String(), wave_id: Type.String(), approved_at: Type.String() });

  return {
    events: EVENT_SCHEMAS,
    waveState: WaveStateS,
    itemState: ItemStateS,
    attemptRecord: AttemptRecordS,
    contract: ContractS,
    finding: FindingS,
    policy: PolicyS,
    config: Config,
    controllerLock: ControllerLockS,
    ticket: TicketS,
    cancelRequest: CancelRequestS,
    trackerLockHolder: TrackerLockHolderS,
    jobPid: JobPidS,
    itemClaim: ItemClaimS,
    leaseHolder: LeaseHolderS,
    approval: ApprovalS,
  };
}

export type StoreShapes = ReturnType<typeof storeShapes>;
/** The value a schema of StoreShapes accepts. */
export type ShapeOf<K extends Exclude<keyof StoreShapes, "events">> = Static<StoreShapes[K]>;
/** The value an event schema accepts. */
export type EventShapeOf<K extends EventName> = Static<StoreShapes["events"][K]>;

// ---- drift guards: a schema that misses or mistypes a field of the core types fails here ------

type Mutual<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
/** The schema's arrays are mutable; the core's readonly ones are the same data. */
type Mutable<T> = {
  -readonly [K in keyof T]: T[K] extends readonly (infer U)[] ? U[] : T[K] extends Readonly<Record<string, infer V>> ? Record<string, V> : T[K];
};
type EventOf<K extends EventName> = Extract<WaveEvent, { event: K }>;

export type SchemaDriftChecks = [
  // Schema-approved values are core values (the direction a parse relies on)...
  Assert<[{ [K in EventName]: EventShapeOf<K> }] extends [{ [K in EventName]: EventOf<K> }] ? true : false>,
  Assert<[ShapeOf<"waveState">] extends [WaveState] ? true : false>,
  // ...and every core field is in the schema (policy, with its readonly arrays, is compared below).
  Assert<Mutual<{ [K in EventName]: Omit<EventShapeOf<K>, "policy"> }, { [K in EventName]: Omit<EventOf<K>, "policy"> }>>,
  Assert<Mutual<Omit<ShapeOf<"waveState">, "policy">, Omit<WaveState, "policy">>>,
  Assert<Mutual<ShapeOf<"itemState">, ItemState>>,
  Assert<Mutual<ShapeOf<"attemptRecord">, AttemptRecord>>,
  Assert<Mutual<ShapeOf<"contract">, Contract>>,
  Assert<Mutual<ShapeOf<"finding">, Finding>>,
  Assert<Mutual<ShapeOf<"policy">, Mutable<WavePolicy>>>,
  Assert<Mutual<ShapeOf<"config">, ResolvedConfig>>,
  // The event table has exactly the core's event names.
  Assert<Mutual<keyof StoreShapes["events"], EventName>>,
];
