import { Type, type Static } from "@sinclair/typebox";
import { Nullable, StringEnum, TaggedUnion, schemaDocument } from "../schema/kit.js";
import { CONFIG_DEFAULTS as D } from "./defaults.js";

// The configuration FILE of SPEC §3: every key optional, snake_case, no unknown keys at any level.
// It is the single source of schemas/config.schema.json and of the README's configuration
// reference (src/config/docs.ts); test/config keeps its static type equal to src/config/types.ts.

export const CONFIG_SCHEMA_ID = "urn:dx-batch:schema:config";

/** Provider names become directory names of the runner's files, so they stay path-safe. */
export const PROVIDER_NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$";
const ENV_NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$";

const PathKey = (description: string, dflt?: string) => Type.String({ minLength: 1, description, ...(dflt === undefined ? {} : { default: dflt }) });
const Count = (description: string, dflt: number) => Type.Integer({ minimum: 1, description, default: dflt });
/** Durations in minutes may be fractional (0.5 = 30 s), which short-lived waves and tests need. */
const Minutes = (description: string, dflt: number) => Type.Number({ exclusiveMinimum: 0, description, default: dflt });
const Argv = (description: string) => Type.Array(Type.String(), { minItems: 1, description });

export const ProviderSchema = Type.Object(
  {
    command: Type.Optional(
      Argv(
        "argv of the agent, with {prompt_file} {worktree} {item_id} {job_id} {phase} {attempt} {model} {contract_file} placeholders; never run through a shell. A relative path as first element (one with a `/`) is resolved against the config file",
      ),
    ),
    stdin: Type.Optional(StringEnum(["prompt", "none"], { description: "`prompt` feeds the prompt file on stdin; `none` gives the agent no stdin" })),
    env: Type.Optional(
      Type.Record(Type.String(), Type.String(), {
        additionalProperties: false,
        propertyNames: { pattern: ENV_NAME_PATTERN },
        description: "extra environment variables for this provider's agents only",
      }),
    ),
    pass_env: Type.Optional(
      Type.Array(Type.String({ pattern: ENV_NAME_PATTERN }), {
        description: "variables of dx-batch's own environment this provider's agents may see even though another provider claims them (its credentials)",
      }),
    ),
    public_env: Type.Optional(
      Type.Array(Type.String({ pattern: ENV_NAME_PATTERN }), {
        description: "keys of `env` whose values are recorded in the wave's ledger as they are; every other `env` value is recorded as <redacted>",
      }),
    ),
    preflight: Type.Optional(
      Argv("argv that must exit 0 for the provider to be available (offline, must not spend money); default: argv[0] of command resolves to an executable"),
    ),
    model: Type.Optional(Type.String({ minLength: 1, description: "model name, substituted for {model}" })),
    max_parallel: Type.Optional(Type.Integer({ minimum: 1, description: "at most this many jobs of this provider at once" })),
  },
  { additionalProperties: false, description: "one provider: overrides a built-in of the same name or adds a `command` provider" },
);

export const RunnerSchema = TaggedUnion(
  [
    Type.Object({ type: Type.Literal("builtin", { description: "the built-in runner (SPEC §9)" }) }, { additionalProperties: false }),
    Type.Object(
      {
        type: Type.Literal("dx-runner", { description: "an external dx-runner installation" }),
        command: Type.String({ minLength: 1, description: "the dx-runner executable: a name on PATH, or a path (relative: to the config file)" }),
      },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        type: Type.Literal("bullmq", { description: "jobs go to `dx-batch worker` daemons on other hosts through BullMQ on Redis (docs/multi-host.md)" }),
        redis_url: Type.String({ minLength: 1, description: "the Redis every worker uses, redis://host:port" }),
        queue_prefix: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9_-]{1,32}$", description: "queues are `<prefix>:<provider>` (default dxb)" })),
        lock_seconds: Type.Optional(
          Type.Number({ exclusiveMinimum: 0, description: "the workers' job lock window; a lost lock fails the attempt as runner_job_lost (default 30)" }),
        ),
        unavailable_minutes: Type.Optional(
          Type.Number({ exclusiveMinimum: 0, description: "Redis unreachable this long pauses the wave queue_unavailable (default 5)" }),
        ),
      },
      { additionalProperties: false },
    ),
  ],
  {
    description:
      'which runner launches the agents: `{"type":"builtin"}`, `{"type":"dx-runner","command":"dx-runner"}` or `{"type":"bullmq","redis_url":"redis://…"}`',
    default: D.runner,
  },
);

export const TrackerSchema = TaggedUnion(
  [
    Type.Object(
      {
        type: Type.Literal("beads", { description: "Beads through the `bd` CLI" }),
        command: Type.Optional(
          Type.String({ minLength: 1, description: "the bd executable: a name on PATH (default `bd`), or a path (relative: to the config file)" }),
        ),
        close_on_approve: Type.Optional(Type.Boolean({ description: "close the issue when its item is approved (default false)" })),
      },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        type: Type.Literal("file", { description: "a read-only JSONL file of Beads-shaped issues" }),
        path: Type.String({ minLength: 1, description: "the JSONL file (relative: to the config file)" }),
      },
      { additionalProperties: false },
    ),
    Type.Object({ type: Type.Literal("none", { description: "no tracker: the item id alone" }) }, { additionalProperties: false }),
  ],
  // No `default`: it depends on whether `bd` is installed (see defaultTracker).
  { description: "where items come from and where their progress is reported" },
);

export const ConfigFileSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ description: "ignored; lets an editor find this schema" })),
    artifact_dir: Type.Optional(
      PathKey(
        "root of the wave state, ledgers, leases, prompts and outcomes (env DX_BATCH_ARTIFACT_DIR); `<home>` is $DX_BATCH_HOME, else $XDG_STATE_HOME/dx-batch, else ~/.local/state/dx-batch",
      ),
    ),
    runner_log_dir: Type.Optional(PathKey("where the built-in runner keeps its job files (env DX_RUNNER_LOG_BASE)")),
    workspace_root: Type.Optional(PathKey("item worktrees live at `<workspace_root>/<item>/<repo>` (env DX_BATCH_WORKSPACE_ROOT)")),
    allowed_prefixes: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { description: "extra roots where worktrees may live", default: D.allowed_prefixes }),
    ),
    protected_paths: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description: "checkouts no agent may run in (the repo source is always protected)",
        default: D.protected_paths,
      }),
    ),
    repo: Type.Optional(
      Nullable(Type.String({ minLength: 1 }), { description: "create missing worktrees from this checkout; null: never create them", default: D.repo }),
    ),
    base: Type.Optional(
      Type.String({ minLength: 1, pattern: "^[^-]", description: "the git ref new worktrees start from (must not start with '-')", default: D.base }),
    ),
    max_parallel: Type.Optional(Count("items in flight at once", D.max_parallel)),
    max_attempts: Type.Optional(Count("implement attempts per item before it ends blocked", D.max_attempts)),
    stall_minutes: Type.Optional(Minutes("a job with no log, worktree or CPU progress for this long is stalled", D.stall_minutes)),
    lease_ttl_minutes: Type.Optional(Minutes("an item+attempt lease older than this is stale", D.lease_ttl_minutes)),
    exec_process_cap: Type.Optional(Count("no dispatch while more agent processes than this are alive (env DX_BATCH_EXEC_PROCESS_CAP)", D.exec_process_cap)),
    require_review: Type.Optional(
      Type.Boolean({ description: "run a separate review after a successful implement (false: approve on implement)", default: D.require_review }),
    ),
    max_runtime_minutes: Type.Optional(Minutes("a job running longer than this is stopped and the attempt fails", D.max_runtime_minutes)),
    review_must_differ: Type.Optional(
      Type.Boolean({ description: "the reviewer must be a different provider from the implementer", default: D.review_must_differ }),
    ),
    provider_cooldown_minutes: Type.Optional(
      Type.Number({ minimum: 0, description: "how long a provider that reported quota exhaustion is skipped (minutes)", default: D.provider_cooldown_minutes }),
    ),
    max_log_mb: Type.Optional(Count("an agent log beyond this many MiB is cut (reason log_size_capped)", D.max_log_mb)),
    quota_retries_before_stop: Type.Optional(
      Count("rate-limit retries seen in an agent's live stream before dx-batch stops the job and cools its provider down", D.quota_retries_before_stop ?? 2),
    ),
    max_quota_waits: Type.Optional(
      Count("quota errors in a row, across an item's chain, after which it ends blocked provider_quota_exhausted", D.max_quota_waits ?? 3),
    ),
    budget: Type.Optional(
      Type.Object(
        {
          max_tokens_per_item: Type.Optional(
            Nullable(Type.Number({ minimum: 0 }), { description: "tokens (input, output, cache reads) an item may spend across its attempts" }),
          ),
          max_usd_per_item: Type.Optional(Nullable(Type.Number({ minimum: 0 }), { description: "dollars an item may spend, as the CLIs report cost" })),
          max_tokens_per_wave: Type.Optional(Nullable(Type.Number({ minimum: 0 }), { description: "tokens the whole wave may spend" })),
          max_usd_per_wave: Type.Optional(Nullable(Type.Number({ minimum: 0 }), { description: "dollars the whole wave may spend" })),
        },
        {
          additionalProperties: false,
          description: "spend limits; an item over its budget ends blocked budget_exhausted, a wave over its budget dispatches nothing new",
        },
      ),
    ),
    retry_chain: Type.Optional(
      Type.Array(Type.String({ pattern: PROVIDER_NAME_PATTERN }), {
        minItems: 1,
        description: "provider for attempt n is entry n; the entry `blocked` ends the item blocked",
        default: D.retry_chain,
      }),
    ),
    review_provider: Type.Optional(
      Nullable(Type.String({ pattern: PROVIDER_NAME_PATTERN }), {
        description: "who reviews; null: the first available provider of retry_chain",
        default: D.review_provider,
      }),
    ),
    runner: Type.Optional(RunnerSchema),
    tracker: Type.Optional(TrackerSchema),
    providers: Type.Optional(
      Type.Record(Type.String(), ProviderSchema, {
        additionalProperties: false,
        propertyNames: { pattern: PROVIDER_NAME_PATTERN },
        description: "providers by name, overriding or adding to the built-ins (opencode, claude-code, cc-glm, gemini, codex)",
        default: D.providers,
      }),
    ),
    prompts: Type.Optional(
      Type.Object(
        {
          implement: Type.Optional(PathKey("implement prompt template file with {{placeholders}} (relative: to the config file)")),
          review: Type.Optional(PathKey("review prompt template file with {{placeholders}} (relative: to the config file)")),
        },
        { additionalProperties: false, description: "prompt template files replacing the built-in ones", default: D.prompts },
      ),
    ),
    notify: Type.Optional(
      Type.Object(
        {
          command: Type.Optional(
            Type.Array(Type.String({ minLength: 1 }), {
              minItems: 1,
              description: "argv run at each terminal wave state, with DX_BATCH_WAVE_ID, DX_BATCH_WAVE_STATE and DX_BATCH_REPORT_JSON (a file) in its env",
            }),
          ),
          webhook: Type.Optional(
            Type.String({ pattern: "^https?://", description: "http(s) URL that gets the JSON report by POST at each terminal wave state (retried)" }),
          ),
        },
        { additionalProperties: false, description: "tell someone when a wave completes, fails or is cancelled; a failure is recorded, never fails the wave" },
      ),
    ),
    pr: Type.Optional(
      Type.Object(
        {
          remote: Type.Optional(
            Type.String({ minLength: 1, pattern: "^[^-]", description: "git remote approved branches dx/<item> are pushed to (default origin)" }),
          ),
          open: Type.Optional(StringEnum(["none", "gh"], { description: "gh: open a pull request with `gh pr create` (default none)" })),
          draft: Type.Optional(Type.Boolean({ description: "open pull requests as drafts (default true)" })),
          base: Type.Optional(
            Type.String({ minLength: 1, pattern: "^[^-]", description: "the pull request's base branch (default: the remote's default branch)" }),
          ),
        },
        {
          additionalProperties: false,
          description: "push each approved item's branch dx/<item> and optionally open a pull request; absent: branches stay local",
        },
      ),
    ),
    otel: Type.Optional(
      Type.Object(
        {
          endpoint: Type.String({
            pattern: "^https?://[^\\s]+$",
            description: "OTLP/HTTP base URL (http://collector:4318) or full traces URL (…/v1/traces); `serve --otel-endpoint` overrides it",
          }),
        },
        {
          additionalProperties: false,
          description: "`dx-batch serve` exports one OpenTelemetry span per attempt (provider, item, outcome) to this endpoint; absent: no traces",
        },
      ),
    ),
  },
  { additionalProperties: false, description: "dx-batch configuration file (dx-batch.config.json)" },
);

export type ConfigFile = Static<typeof ConfigFileSchema>;

export const configDocument = (): Record<string, unknown> => schemaDocument(ConfigFileSchema, { id: CONFIG_SCHEMA_ID, title: "dx-batch configuration" });
