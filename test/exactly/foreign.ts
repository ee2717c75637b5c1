import { spawn } from "node:child_process";
import type { CliResult } from "../helpers/procs.js";
import type { E2E } from "../helpers/world.js";

// A dx-batch process on "another host": a new UTS namespace (`unshare -u`) with its own hostname.
// Same filesystem and pid namespace, which is what a second machine on shared storage looks like
// to the lock files.

export interface Foreign {
  pid: number;
  done: Promise<CliResult>;
}

const live = new Set<number>();

export function foreignCli(w: E2E, host: string, command: string, args: readonly string[], env: Record<string, string>): Foreign {
  const child = spawn(
    "unshare",
    ["-u", "--", "sh", "-c", 'hostname "$1" && shift && exec "$@"', "sh", host, process.execPath, w.bin, command, "--config", w.configPath, ...args],
    { cwd: w.root, env: { ...w.env, ...env }, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
  if (child.pid === undefined) throw new Error("cannot spawn unshare");
  const pid = child.pid;
  live.add(pid);
  return {
    pid,
    done: new Promise((resolve) =>
      child.on("close", (code, signal) => {
        live.delete(pid);
        resolve({ code, signal, stdout: out, stderr: err });
      }),
    ),
  };
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone
  }
}

/** afterEach: nothing started here outlives its test (a frozen one is woken to die). */
export function killForeign(): void {
  for (const pid of live) {
    signal(-pid, "SIGKILL");
    signal(pid, "SIGCONT");
  }
  live.clear();
}
