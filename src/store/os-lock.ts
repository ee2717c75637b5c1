import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { FILE_MODE } from "./layout.js";

// The OS lock (SPEC §15.4): an exclusive flock(2) on a file next to controller.lock, held for the
// controller's whole life. The kernel drops it when the holder dies, and keeps it while the holder
// is frozen (SIGSTOP, a suspended laptop, a paused VM): exactly the case a heartbeat cannot tell
// from death. While it is held, nobody takes the wave over, whatever the heartbeat says.
//
// Why a child process: Node has no flock. The choices were a native addon (fs-ext and the like:
// a compiler on every install, and a binding that breaks on a Node upgrade) or util-linux's
// flock(1), present on every Linux. The controller starts `flock -n FILE sh -c 'echo locked; exec
// cat'` in its own process group with its stdin a pipe from the controller. `cat` holds the
// locked descriptor and blocks reading that pipe: when the controller dies, however it dies, the
// kernel closes the pipe, cat reads EOF and exits, and the lock goes with it; while the
// controller is merely stopped the pipe stays open and the lock stays held. Nothing is ever
// written to the pipe.
//
// Why a separate file: controller.lock's content is replaced by rename (readers never see half a
// holder), which gives it a new inode each time, and flock belongs to an inode. So the OS lock
// lives on `controller.lock.flock`, created once and never replaced or removed.
//
// Where flock(1) is missing (macOS without util-linux) or the filesystem refuses flock, the OS
// lock is "unavailable" and the epoch fencing of controller-lock.ts is what keeps one writer.
// `DX_BATCH_NO_OS_LOCK=1` turns it off on purpose: it stands for such a filesystem in the tests
// that prove the fencing alone.

export const OS_LOCK_DISABLE_ENV = "DX_BATCH_NO_OS_LOCK";
const CONFLICT = 75;
const HOLD_SCRIPT = "echo locked; exec cat";
const START_TIMEOUT_MS = 10_000;

export const osLockPath = (controllerLockFile: string): string => `${controllerLockFile}.flock`;

export function osLockDisabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env[OS_LOCK_DISABLE_ENV];
  return v !== undefined && v !== "" && v !== "0" && v !== "false";
}

function touch(file: string): void {
  closeSync(openSync(file, "a", FILE_MODE));
}

export type OsLockProbe = "free" | "held" | "unavailable" | "disabled";

/** Is the OS lock held by someone (a live controller, possibly frozen)? Takes it for an instant. */
export function probeOsLock(file: string, env: NodeJS.ProcessEnv = process.env): OsLockProbe {
  if (osLockDisabled(env)) return "disabled";
  try {
    touch(file);
  } catch {
    return "unavailable";
  }
  const r = spawnSync("flock", ["--nonblock", "--exclusive", "--conflict-exit-code", String(CONFLICT), file, "true"], {
    stdio: "ignore",
    timeout: START_TIMEOUT_MS,
  });
  if (r.error !== undefined) return "unavailable";
  if (r.status === 0) return "free";
  return r.status === CONFLICT ? "held" : "unavailable";
}

export interface OsLockHold {
  readonly file: string;
  /** The holder process (flock(1)); its process group holds the lock. */
  readonly pid: number;
  /** Still held: the holder process is running. */
  readonly alive: boolean;
  release(): void;
}

export type OsLockResult = { kind: "held"; hold: OsLockHold } | { kind: "busy" } | { kind: "unavailable"; detail: string } | { kind: "disabled" };

/** How often a busy lock is tried again, and how long apart: a probe holds it for an instant. */
const BUSY_TRIES = 3;
const BUSY_RETRY_MS = 50;

/**
 * Take the OS lock for this process's life, without waiting for a holder: "busy" when someone
 * else holds it. A lock found busy is tried again twice, 50 ms apart: `probeOsLock` (doctor) takes
 * it for the few milliseconds of `flock … true`, and a controller starting at that instant must
 * not be refused for it. A real holder keeps it for its whole life.
 */
export async function holdOsLock(file: string, env: NodeJS.ProcessEnv = process.env): Promise<OsLockResult> {
  for (let i = 1; ; i++) {
    const r = await holdOnce(file, env);
    if (r.kind !== "busy" || i >= BUSY_TRIES) return r;
    await new Promise((res) => setTimeout(res, BUSY_RETRY_MS));
  }
}

function holdOnce(file: string, env: NodeJS.ProcessEnv): Promise<OsLockResult> {
  if (osLockDisabled(env)) return Promise.resolve({ kind: "disabled" });
  try {
    touch(file);
  } catch (e) {
    return Promise.resolve({ kind: "unavailable", detail: e instanceof Error ? e.message : String(e) });
  }
  let child: ChildProcess;
  try {
    child = spawn("flock", ["--nonblock", "--exclusive", "--conflict-exit-code", String(CONFLICT), file, "sh", "-c", HOLD_SCRIPT], {
      stdio: ["pipe", "pipe", "ignore"],
      // Its own group: a Ctrl-C at the controller's terminal must not drop the lock under it.
      detached: true,
    });
  } catch (e) {
    return Promise.resolve({ kind: "unavailable", detail: e instanceof Error ? e.message : String(e) });
  }
  return new Promise<OsLockResult>((resolve) => {
    let settled = false;
    let exited = false;
    const done = (r: OsLockResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const kill = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      kill();
      done({ kind: "unavailable", detail: `flock did not answer within ${START_TIMEOUT_MS} ms` });
    }, START_TIMEOUT_MS);
    child.on("error", (e) => done({ kind: "unavailable", detail: e.message }));
    child.on("exit", (code) => {
      exited = true;
      if (code === CONFLICT) done({ kind: "busy" });
      else done({ kind: "unavailable", detail: `flock exited ${String(code)}` });
    });
    let out = "";
    child.stdout?.on("data", (b: Buffer) => {
      out += b.toString("utf8");
      if (!out.startsWith("locked")) return;
      const pid = child.pid ?? -1;
      // Neither the holder nor its pipes may keep the controller's event loop alive.
      child.unref();
      for (const s of [child.stdin, child.stdout]) (s as unknown as { unref?: () => void } | null)?.unref?.();
      done({
        kind: "held",
        hold: {
          file,
          pid,
          get alive() {
            return !exited;
          },
          release: () => {
            child.stdin?.end();
            kill();
          },
        },
      });
    });
  });
}
