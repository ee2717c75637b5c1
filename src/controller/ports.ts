import type { AttemptCommit, ReviewDiff } from "../workspace/attempt-commit.js";
import type { Outcome } from "../core/effects.js";
import type { DraftEvent, ItemDelivered, WaveEvent } from "../core/events.js";
import type { ItemState, WaveState } from "../core/state.js";
import type { ItemReason } from "../core/reasons.js";
import type { Phase } from "../core/status.js";
import type { RunnerPort } from "../runner/port.js";
import type { TrackerIssue, TrackerPort } from "../tracker/port.js";

// What the controller needs from the world, as narrow ports: tests hand in object literals, the
// CLI hands in the real store, runner, tracker and workspace.

/** Cancels a timer set with `Clock.setTimer`; calling it after the timer fired does nothing. */
export type CancelTimer = () => void;

/**
 * Every time read and every wait in the shell goes through this port, so a test can move time
 * forward without waiting (XState's SimulatedClock is the model).
 */
export interface Clock {
  nowMs(): number;
  nowIso(): string;
  /** Calls `fn` once after `ms` milliseconds. */
  setTimer(fn: () => void, ms: number): CancelTimer;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  nowIso: () => new Date().toISOString(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

/** The durable record: the ledger (write-ahead) and the snapshot. All `WaveSession` needs. */
export interface WaveLog {
  /** Write the event and make it durable before returning. */
  append(e: WaveEvent): void;
  /**
   * Group commit (both or neither): `write` puts the event in its ledger without waiting for the
   * disk, `sync` makes every event written since the last sync durable (one fsync per file). A
   * log without them makes each append durable on its own.
   */
  write?(e: WaveEvent): void;
  sync?(): void;
  /** Bytes nobody of this wave wrote, moved aside from the ledgers since the last call (issue #10). */
  takeForeignMoves?(): { file: string; moved_to: string; bytes: number }[];
  /** Free the space kept back for recording a pause on a full disk (issue #10). */
  releaseDiskReserve?(): void;
  writeSnapshot(s: WaveState): void;
  /**
   * A checkpoint written off the loop (store/snapshot-later.ts); absent: `writeSnapshot`. `failed`
   * hears of one that could not be written, so the next is written with `writeSnapshot`.
   */
  writeSnapshotLater?(s: WaveState, failed: (err: Error) => void): void;
  /** The writer's controller epoch (SPEC §15.3), stamped on every event; absent in tests. */
  readonly epoch?: number;
}

/** Item+attempt leases and cross-wave claims (SPEC §8). */
export interface WaveLeases {
  acquireLease(itemId: string, attempt: number): { ok: true; key: string } | { ok: false; holder: string };
  releaseLease(itemId: string, attempt: number): void;
  /**
   * Take the item's claim for this wave. It is not yet durable: `makeDurable` makes it so, and must
   * settle before the item's first item_dispatched is committed (store/claim.ts).
   */
  claim(itemId: string): { ok: true; path?: string } | { ok: false; byWave: string };
  releaseClaim(itemId: string): void;
  /** The earlier wave that approved the item, or null (SPEC §15.4 already_approved). */
  approvedBy?(itemId: string): string | null;
}

/** The per-attempt files: prompt, contract and outcome. */
export interface AttemptFiles {
  /** Writes the prompt (mode 0600) and returns its path; `makeDurable` makes it outlive a machine crash. */
  writePrompt(itemId: string, phase: Phase, attempt: number, text: string): string;
  /** fsync these files and their directories, off the event loop (store/sync-later.ts). */
  makeDurable?(files: readonly string[]): Promise<void>;
  /** Make a file written without fsync durable in the background (drainSyncs waits for it). */
  syncLater?(file: string): void;
  /** Settles when every file written to be synced later (outcomes, approvals) is durable. */
  drainSyncs?(): Promise<void>;
  promptPath(itemId: string, phase: Phase, attempt: number): string;
  /** With a worktree: `<worktree>/.dx-batch/<phase>.attempt<n>.contract.json` (SPEC §15.6). */
  contractPath(itemId: string, phase: Phase, attempt: number, worktree?: string | null): string;
  outcomePath(itemId: string, phase: Phase, attempt: number): string;
  writeOutcome(path: string, outcome: Outcome): void;
}

/** The wave's pid files (jobs/<wave>/*.pid), so cancel works without a controller. */
export interface PidFiles {
  registerPid(rec: { pid: number; pgid: number; item_id: string; phase: Phase; attempt: number; run_instance: string }): void;
  removePid(pid: number): void;
  /** Pids registered for this wave (jobs/<wave>/*.pid), for cancel without a controller. */
  wavePids(): { pid: number; pgid: number }[];
}

/** The controller lock this process holds for the wave. */
export interface ControllerLockPort {
  /** Rewrites the heartbeat; false when the lock is no longer ours. */
  heartbeat(): boolean;
  releaseControllerLock(): void;
}

/** The exec-saturation guard, shared by every controller of one artifact_dir. */
export interface ExecGuard {
  /** Distinct live pids across jobs/*\/*.pid and the runner's pid files (exec-saturation guard). */
  liveExecPids(): Promise<number>;
  /**
   * Run count-then-dispatch under a lock shared by every controller of this artifact_dir, so two
   * waves cannot both see room under exec_process_cap and both fill it.
   */
  withExecLock<T>(fn: () => Promise<T>): Promise<T>;
}

/** The wave's files: everything above, as the store adapter (app/wave-files.ts) provides them. */
export interface WaveFiles extends WaveLog, WaveLeases, AttemptFiles, PidFiles, ControllerLockPort, ExecGuard {
  readonly waveDir: string;
}

/** What the controller loop itself uses of the wave's files (the lock's release and the pid listing are the app's). */
export type ControllerFiles = WaveLog &
  WaveLeases &
  AttemptFiles &
  Pick<PidFiles, "registerPid" | "removePid"> &
  Pick<ControllerLockPort, "heartbeat"> &
  ExecGuard;

export type WorktreeResult =
  | { ok: true; path: string; base_commit: string | null; /** Checked out just now by this resolve. */ created?: boolean }
  | { ok: false; status: "failed" | "blocked"; reason_code: ItemReason; detail: string };

export interface Workspace {
  resolve(itemId: string): Promise<WorktreeResult>;
  head(worktree: string): Promise<string | null>;
  /**
   * The worktree as the unit of work (issue #11). Optional, so a test fake can leave them out:
   * then no `.dx-batch/` is prepared, nothing is auto-committed and no range is recorded.
   */
  prepare?(worktree: string): Promise<void>;
  /**
   * Whether a checkout is clean at its HEAD now (`git status`), or null when git cannot say.
   * Optional: asked ahead of the first dispatch of a checkout dx-batch found rather than created,
   * so its first job starts without the runner's own look (issue #14).
   */
  look?(worktree: string): Promise<{ head: string | null; clean: boolean } | null>;
  commitLeftovers?(o: { worktree: string; item_id: string; attempt: number; provider: string; summary: string | null }): Promise<AttemptCommit>;
  diff?(worktree: string, from: string | null, to: string): Promise<ReviewDiff>;
  /**
   * The worktrees are on the workers' hosts (a queue runner): a review's diff is made there, in
   * place of the marks its prompt is given (prompts.ts fillWorkerDiff).
   */
  diffOnWorker?: boolean;
}

export interface ContractCheck {
  validate(
    text: string,
    expect: { item_id: string; phase: Phase },
  ): { ok: true; contract: import("../core/contract.js").Contract } | { ok: false; reason_code: ItemReason; detail: string };
}

export interface Templates {
  implement?: string;
  review?: string;
}

export interface ControllerDeps {
  files: ControllerFiles;
  runner: RunnerPort;
  tracker: TrackerPort;
  workspace: Workspace;
  contracts: ContractCheck;
  clock: Clock;
  /** A fresh run_instance id (random in production, a counter in tests). */
  newRunInstance(): string;
  templates: Templates;
  /** Pushes approved work (issue #13); absent or null: approved branches stay local. */
  delivery?: DeliveryPort | null;
  /** One line per transition for humans and the log; the live view subscribes to `onEvent`. */
  onEvent?(e: WaveEvent, s: WaveState): void;
  log(line: string): void;
  timing: {
    stall_minutes: number;
    max_runtime_minutes: number;
    exec_process_cap: number;
    /** How often running jobs are health-checked (own jobs report exits at once anyway). */
    health_interval_ms: number;
    /** How often re-attached jobs (started before a restart) are polled for their exit. */
    reattach_poll_ms: number;
    heartbeat_ms: number;
    /** After a first SIGINT, how long a second one may still ask to stop the agents (0: none). */
    pause_grace_ms?: number;
  };
}

/** Where approved work goes: push the item's branch, maybe open a pull request; never throws. */
export interface DeliveryPort {
  deliver(item: ItemState): Promise<Omit<ItemDelivered, "event" | "seq" | "at" | "item_id">>;
}

export type { DraftEvent, TrackerIssue };
