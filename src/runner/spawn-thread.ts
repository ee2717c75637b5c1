import { Worker } from "node:worker_threads";
import type { ExecGitOptions, GitResult } from "../workspace/git.js";

// Process starts off the controller's event loop (issue #14). Node's spawn (libuv's uv_spawn)
// forks and then blocks the calling thread until the child has exec'd, so that it can report
// ENOENT at once. On two loaded cores that wait was 1-4 ms per start, and a wave controller
// starts one or two processes per item (git, the agent wrapper): in the saturated dispatch
// benchmark a third of the loop's busy time was spent there, with every other exit waiting.
//
// A wave controller therefore starts its git runs and agent wrappers from one worker thread
// (spawn-thread-worker.ts). Only the wait moves: the fork and exec are the same system calls of
// the same process, so the pids, process groups, inherited descriptors and exit codes are what
// an in-thread spawn gives. The loop posts a request and gets the pid (or git's result) back.
//
// Until the thread is up (it boots in parallel with the wave's start), or if it cannot start or
// dies, every call runs on the loop as before: the thread is a speed-up, never a dependency. A
// wrapper whose exit the thread was to report when it died is found ended by the runner's own
// checks (its rc file), as after a controller restart.

/** A detached process with its stdio on descriptors of this process (the wrapper's start). */
export interface DetachedSpawn {
  file: string;
  args: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Descriptors of this process, or "ignore"; they stay open here until the start is answered. */
  stdio: readonly [number | "ignore", number, number];
}

/**
 * A start's outcome. `unknown`: the thread ended before it answered, so the process may or may not
 * be running: the caller must look for it (by its marker) before it calls the start failed.
 */
export type SpawnAnswer = { ok: true; pid: number; exited: Promise<void> } | { ok: false; message: string; unknown: boolean };

/** Messages to the thread. */
export type ThreadRequest = { id: number; kind: "git"; args: readonly string[]; opts: ExecGitOptions } | ({ id: number; kind: "spawn" } & DetachedSpawn);

/** A request before it is given its id (Omit over each member of the union). */
type Unnumbered<T> = T extends unknown ? Omit<T, "id"> : never;

/** Messages from the thread. */
export type ThreadAnswer =
  | { id: number; kind: "git"; result: GitResult }
  | { id: number; kind: "spawned"; pid: number }
  | { id: number; kind: "spawn-failed"; message: string }
  | { id: number; kind: "exit" };

interface Pending {
  git?: (r: GitResult) => void;
  /** The start's answer: the pid, or why there is none (unknown: the thread ended first). */
  started?: (pid: number | null, message: string, unknown: boolean) => void;
  exited?: () => void;
}

/**
 * The worker's file: the compiled module next to this one's compiled copy. This module runs from
 * dist/runner/ (tsc), dist/bin/ (the bundle) or src/runner/ (tests): all two levels under the
 * package root, so one path from the root serves all three, and the worker always runs the small
 * compiled module, not the bundle.
 */
export const WORKER_FILE = new URL("../../dist/runner/spawn-thread-worker.js", import.meta.url);

class SpawnThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Answers the process must stay alive for (git runs and starts; not running wrappers). */
  private holding = 0;
  ready = false;
  dead = false;
  /** Settles true once the thread runs, false if it ended first. */
  readonly up: Promise<boolean>;

  constructor(file: URL) {
    let settle: (up: boolean) => void = () => undefined;
    this.up = new Promise((r) => (settle = r));
    // A small heap: the thread holds a request or an answer at a time, and a worker's default
    // young generation alone grew the controller's RSS by about 20 MB (1,000-item scale run).
    // git output that may be large never comes here (git.ts bigOutput).
    this.worker = new Worker(file, { resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 48 } });
    this.worker.on("online", () => {
      this.ready = true;
      settle(true);
      this.hold(-1);
    });
    this.worker.on("message", (m: ThreadAnswer) => this.answer(m));
    const end = (): void => {
      settle(false);
      this.die();
    };
    this.worker.on("error", end);
    this.worker.on("exit", end);
    // Held while it boots (a few tens of ms), so that a wait for it ends; let go once it runs.
    // After the listeners: attaching a "message" listener refs the worker's port again.
    this.hold(+1);
  }

  git(args: readonly string[], opts: ExecGitOptions): Promise<GitResult> {
    return new Promise((resolve) => this.post({ kind: "git", args, opts }, { git: resolve }));
  }

  spawn(s: DetachedSpawn): Promise<SpawnAnswer> {
    let exited: () => void = () => undefined;
    const done = new Promise<void>((r) => (exited = r));
    return new Promise((resolve) =>
      this.post(
        { kind: "spawn", ...s },
        {
          started: (pid, message, unknown) => resolve(pid === null ? { ok: false, message, unknown } : { ok: true, pid, exited: done }),
          exited: () => exited(),
        },
      ),
    );
  }

  private post(body: Unnumbered<ThreadRequest>, p: Pending): void {
    const id = this.nextId++;
    this.pending.set(id, p);
    this.hold(+1);
    this.worker.postMessage({ id, ...body });
  }

  private hold(d: number): void {
    this.holding += d;
    if (this.dead) return;
    if (this.holding > 0) this.worker.ref();
    else this.worker.unref();
  }

  private answer(m: ThreadAnswer): void {
    const p = this.pending.get(m.id);
    if (p === undefined) return;
    if (m.kind === "exit") {
      this.pending.delete(m.id);
      p.exited?.();
      return;
    }
    // A started wrapper stays pending for its exit, without holding the process up.
    if (m.kind !== "spawned") this.pending.delete(m.id);
    this.hold(-1);
    if (m.kind === "git") p.git?.(m.result);
    else if (m.kind === "spawned") p.started?.(m.pid, "", false);
    else p.started?.(null, m.message, false);
  }

  /** The thread is gone: nothing more is sent to it, and nothing waits on it forever. */
  private die(): void {
    if (this.dead) return;
    this.dead = true;
    if (thread === this) thread = null;
    for (const p of this.pending.values()) {
      p.git?.({ ok: false, exitCode: null, stdout: "", stderr: "", error: "git: the spawn thread ended before git answered" });
      // Whether the wrapper started is unknown: the caller looks for it before it gives up.
      p.started?.(null, "the spawn thread ended before the start was answered", true);
      // A running wrapper's exit is no longer heard here: the runner's checks find its rc file.
    }
    this.pending.clear();
  }
}

let thread: SpawnThread | null = null;
let wanted = false;

/** Set to 1: every start runs on the loop, as before the thread (a switch for comparisons). */
export const NO_SPAWN_THREAD_ENV = "DX_BATCH_NO_SPAWN_THREAD";

/**
 * Start the spawn thread (a wave controller calls this first thing, so the thread boots while the
 * wave is set up). Later calls do nothing while it lives. A thread that died is not restarted:
 * whatever killed it would likely kill the next.
 */
export function startSpawnThread(o: { env?: NodeJS.ProcessEnv; workerFile?: URL } = {}): void {
  if (wanted || (o.env ?? process.env)[NO_SPAWN_THREAD_ENV] === "1") return;
  wanted = true;
  try {
    thread = new SpawnThread(o.workerFile ?? WORKER_FILE);
  } catch {
    thread = null;
  }
}

/** Whether the thread started by startSpawnThread runs (false: none, or it ended first). */
export function spawnThreadUp(): Promise<boolean> {
  return thread === null ? Promise.resolve(false) : thread.up;
}

/** The thread when it is up; null: start on the loop. */
export function spawnThread(): Pick<SpawnThread, "git" | "spawn"> | null {
  return thread !== null && thread.ready && !thread.dead ? thread : null;
}
