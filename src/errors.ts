import type { ItemReason, RunnerReason, TrackerReason } from "./core/reasons.js";

// One error class with a stable reason code, and one table from code to exit code and remedy.
// Deep code throws a DxError; only src/cli prints it (`error: <code>: <message>` + `remedy: …`) and
// turns it into an exit code, and it reads both from this table (through describeError).

/**
 * Exit codes. 0–4 are dx-batch's own (SPEC §2, §15.1); 20–26 are dx-runner's, which the built-in
 * runner (`dx-batch runner …`) and its errors keep so that dx-runner scripts work unchanged.
 */
export const ExitCode = {
  ok: 0,
  failure: 1,
  /** dx-batch: paused; `check`: paused or controller dead; `dx-batch runner`: usage. */
  paused_or_usage: 2,
  /** `check`: failed, cancelled or missing; `runner check`: exited_err or blocked. */
  check_failed: 3,
  completed_not_all_approved: 4,
  unknown_provider: 20,
  provider_unavailable: 21,
  worktree_refused: 22,
  concurrency_cap: 26,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

interface ErrorEntry {
  exit: ExitCode;
  /** `{name}` is filled from the error's params; null: no general advice for this code. */
  remedy: string | null;
}

const entry = (exit: ExitCode, remedy: string | null = null): ErrorEntry => ({ exit, remedy });
const F = ExitCode.failure;

/** Every named error code, its exit code and its remedy template. */
export const ERRORS = {
  usage: entry(F, "see `dx-batch <command> --help`"),
  missing_argument: entry(ExitCode.paused_or_usage, "see `dx-batch runner <command> --help`"),
  invalid_wave_id: entry(F, "use letters, digits, '_' and '-', at most 64 characters, starting with a letter or digit"),
  invalid_item_id: entry(F, "item ids look like bd-a1b2 or demo-7f3a86.1.2: letters, digits and '_' in '-'-separated parts"),
  invalid_phase: entry(F),
  invalid_limit: entry(F),
  invalid_label: entry(F),
  no_items: entry(F, "pass at least one item id with --items, --items-file or --ready"),
  items_file_unreadable: entry(F, "check the path given to --items-file"),
  // config
  config_not_found: entry(F, "pass an existing file to --config, or drop it to use ./dx-batch.config.json"),
  config_unreadable: entry(F, "make the config file a readable regular file"),
  config_not_json: entry(F, "fix the JSON syntax of the config file"),
  config_unknown_key: entry(F),
  config_invalid: entry(F),
  prompt_template_unreadable: entry(F, "fix the path in the config's prompts section"),
  // waves
  wave_not_found: entry(F, "list the waves with `dx-batch list`, or leave out --wave-id for the newest; start one with `dx-batch start`"),
  wave_exists: entry(F, "continue it with dx-batch resume --wave-id {wave_id}"),
  wave_already_running: entry(F, "watch it with dx-batch status --wave-id {wave_id} --watch, or stop it with dx-batch cancel --wave-id {wave_id}"),
  wave_already_terminal: entry(F, "read it with dx-batch report --wave-id {wave_id}; start a new wave for items that need more work"),
  wave_not_resumable: entry(F, "inspect it with dx-batch report --wave-id {wave_id}"),
  // refused before the wave exists (issue #13); each caller gives the case's own remedy
  repo_invalid: entry(F, "pass the path of a git checkout with --repo (or `repo` in the config)"),
  item_not_found: entry(F, "check the ids (and the tracker in the config), or pass --allow-missing to run the rest"),
  no_provider_available: entry(F, "fix one provider of retry_chain, or pass --keep-failed to record the failed wave anyway"),
  log_not_found: entry(F),
  artifact_dir_unwritable: entry(F, "check artifact_dir in the config (or $DX_BATCH_ARTIFACT_DIR) is a writable directory"),
  filesystem_error: entry(
    F,
    "check that {path} exists, is a directory where one is expected, and is writable (artifact_dir, runner_log_dir and workspace_root in the config)",
  ),
  orchestrator_exception: entry(F, "this is a bug in dx-batch; rerun with DX_BATCH_DEBUG=1 for a stack trace and report it"),
  // a state directory that is yours, and a disk that fills (issue #10)
  artifact_dir_insecure: entry(F, "make the directory yours alone (chmod 700, owned by you), or choose another root with DX_BATCH_HOME"),
  permission_denied: entry(F, "check the owner and mode of the path and of its parent directories"),
  disk_full: entry(ExitCode.paused_or_usage, "free space on the disk of the artifact directory, then dx-batch resume"),
  // store
  ledger_corrupt: entry(F),
  ledger_seq_invalid: entry(F),
  ledger_event_invalid: entry(F),
  ledger_seq_not_increasing: entry(F),
  ledger_write_failed: entry(F),
  lock_contention: entry(F),
  /** A controller found its epoch taken over (SPEC §15.3); it stopped without touching the wave. */
  controller_lock_lost: entry(F, "nothing to do here: the controller that took the wave over carries on; see dx-batch status --wave-id {wave_id}"),
  // runner
  unknown_provider: entry(ExitCode.unknown_provider),
  provider_concurrency_cap: entry(ExitCode.concurrency_cap),
  prompt_file_missing: entry(ExitCode.paused_or_usage),
  job_already_running: entry(F),
  job_not_found: entry(F),
  job_not_running: entry(F),
  spawn_failed: entry(F),
  dx_runner_missing: entry(F, "install dx-runner or set runner.command in the config"),
  dx_runner_timeout: entry(F),
  dx_runner_failed: entry(F),
  dx_runner_bad_output: entry(F),
  queue_unavailable: entry(F, "start Redis again (or fix the network to it), then dx-batch resume"),
  // workspace and tracker
  worktree_git_failed: entry(F),
  tracker_file_missing: entry(F),
  tracker_file_unreadable: entry(F),
  tracker_file_invalid: entry(F),
  tracker_ready_unsupported: entry(F),
  tracker_lock_timeout: entry(F),
  tracker_command_failed: entry(F),
  tracker_output_invalid: entry(F),
  // serve
  serve_listen_failed: entry(F, "choose another --port or --host"),
  serve_token_required: entry(F, "pass --token <secret> or set DX_BATCH_SERVE_TOKEN, or bind to 127.0.0.1"),
  serve_token_too_short: entry(F, "use a long random token, e.g. `openssl rand -hex 24`"),
} as const satisfies Record<string, ErrorEntry>;

export type NamedErrorCode = keyof typeof ERRORS;

/** Parametrised codes and their table entries, tried in order when a code is not named above. */
const FAMILIES: readonly (readonly [RegExp, ErrorEntry])[] = [
  [/^worktree_(missing|ambiguous):/, entry(ExitCode.worktree_refused, "create the worktree first (dx-batch creates it when `repo` is configured)")],
  [
    /^canonical_worktree_forbidden:/,
    entry(ExitCode.worktree_refused, "run agents only in worktrees under workspace_root or allowed_prefixes, never in a protected checkout"),
  ],
  [/_(binary_missing|auth_missing|preflight_failed)$/, entry(ExitCode.provider_unavailable)],
  [/^invalid_/, entry(F)],
];

/** A code a DxError may carry: a named one, or a reason passed on from the core, a runner or a tracker. */
export type ErrorCode = NamedErrorCode | ItemReason | RunnerReason | TrackerReason | `invalid_${string}`;

export type ErrorParams = Readonly<Record<string, string>>;

export interface DxErrorOptions {
  /** Values for the remedy template's `{name}` slots. */
  params?: ErrorParams;
  /** Advice for this one case, where the table's is too general (which key, which line). */
  remedy?: string | null;
  /** Only where one code needs two exit codes; prefer the table's. */
  exitCode?: ExitCode;
  cause?: unknown;
  /** Another program's own words (git, a tracker, preflight), printed whole on indented lines. */
  detail?: string | null;
}

export class DxError extends Error {
  readonly code: ErrorCode;
  readonly remedy: string | null;
  readonly exitCode: ExitCode;
  /** Text printed whole after the error line, each line indented (git's or a tracker's own words). */
  readonly detail: string | null;

  constructor(code: ErrorCode, message: string, opts: DxErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "DxError";
    this.code = code;
    const e = errorEntry(code);
    this.remedy = opts.remedy ?? fill(e.remedy, opts.params ?? {});
    this.exitCode = opts.exitCode ?? e.exit;
    this.detail = opts.detail ?? null;
  }
}

export const isDxError = (e: unknown): e is DxError => e instanceof DxError;

/** ENOSPC/EDQUOT, or a DxError `disk_full`, anywhere in the cause chain (issue #10: a full disk pauses the wave). */
export function isDiskFull(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur !== undefined && cur !== null && depth < 8; depth++) {
    if (cur instanceof DxError && cur.code === "disk_full") return true;
    const code = cur instanceof Error && "code" in cur ? cur.code : undefined;
    if (code === "ENOSPC" || code === "EDQUOT") return true;
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return false;
}

/** The table's entry for a code (a code nobody named fails with exit 1 and no remedy). */
export function errorEntry(code: string): ErrorEntry {
  if (Object.hasOwn(ERRORS, code)) return ERRORS[code as NamedErrorCode];
  return FAMILIES.find(([re]) => re.test(code))?.[1] ?? entry(F);
}

function fill(template: string | null, params: ErrorParams): string | null {
  if (template === null) return null;
  return template.replace(/\{([a-z_]+)\}/g, (whole, name: string) => params[name] ?? whole);
}

/** What the CLI prints and returns for an error: code, message, remedy and exit code. */
export interface ErrorReport {
  code: string;
  message: string;
  remedy: string | null;
  exitCode: ExitCode;
}

/** An error as the CLI reports it, from the table; `code` names errors that are not DxErrors. */
export function describeError(code: NamedErrorCode, message: string, params: ErrorParams = {}): ErrorReport {
  const e = ERRORS[code];
  return { code, message, remedy: fill(e.remedy, params), exitCode: e.exit };
}

/** The one wave_not_found error: every command that reads a wave refuses the same way. */
export const waveNotFound = (waveId: string, exitCode?: ExitCode): DxError =>
  new DxError("wave_not_found", `no wave ${waveId} in the artifact directory`, { params: { wave_id: waveId }, exitCode });
