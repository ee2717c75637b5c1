import { readdirSync, readFileSync } from "node:fs";

// Jobs that cannot escape (issue #10). Every process of a job inherits the marker variable
// DX_BATCH_RUN_INSTANCE (agent-env.ts); a child that leaves the job's process group with
// `setsid` or a double fork keeps it. Stop, cancel and `doctor --fix` find every process that
// carries a marker in /proc/<pid>/environ and stop it; the exec cap counts the ones outside any
// registered job group. Linux only: where /proc has no environ files the scan finds nothing.

export const MARKER_VAR = "DX_BATCH_RUN_INSTANCE";
const WAVE_VAR = "DX_BATCH_WAVE_ID";
const ITEM_VAR = "DX_BATCH_ITEM_ID";

export interface MarkedProcess {
  pid: number;
  pgid: number;
  run_instance: string;
  wave_id: string | null;
  item_id: string | null;
}

function envValue(environ: string, name: string): string | null {
  const key = `${name}=`;
  const at = environ.startsWith(key) ? 0 : environ.indexOf(`\0${key}`);
  if (at < 0) return null;
  const from = at === 0 ? key.length : at + 1 + key.length;
  const end = environ.indexOf("\0", from);
  return environ.slice(from, end < 0 ? environ.length : end);
}

function procStat(pid: number): { state: string; pgid: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { state: f[0] ?? "?", pgid: Number(f[2]) };
  } catch {
    return null;
  }
}

/** The live (non-zombie) process `pid` if it carries a marker, else null. */
export function markedProcess(pid: number): MarkedProcess | null {
  let environ: string;
  try {
    environ = readFileSync(`/proc/${pid}/environ`, "latin1");
  } catch {
    return null; // gone, or not ours to read
  }
  const ri = envValue(environ, MARKER_VAR);
  if (ri === null || ri === "") return null;
  const st = procStat(pid);
  if (st === null || st.state === "Z" || st.state === "X") return null;
  return { pid, pgid: st.pgid, run_instance: ri, wave_id: envValue(environ, WAVE_VAR), item_id: envValue(environ, ITEM_VAR) };
}

/** Every live process that carries a marker (this process excluded). */
export function scanMarked(): MarkedProcess[] {
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return [];
  }
  const out: MarkedProcess[] = [];
  for (const name of names) {
    if (!/^[0-9]+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    const m = markedProcess(pid);
    if (m !== null) out.push(m);
  }
  return out;
}

let cache: { at: number; procs: MarkedProcess[] } | null = null;

/** scanMarked, done at most every `ttlMs` (the exec cap asks every dispatch cycle). */
export function scanMarkedCached(nowMs: number, ttlMs = 3_000): MarkedProcess[] {
  if (cache === null || nowMs - cache.at >= ttlMs || nowMs < cache.at) cache = { at: nowMs, procs: scanMarked() };
  return cache.procs;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface MarkedKillResult {
  found: number[];
  /** Still alive after SIGKILL (should be none). */
  survivors: number[];
}

/**
 * SIGTERM every marked process that `match` selects, wait up to `graceMs` for them to go, then
 * SIGKILL what is left. Each signal is sent only after the marker is read again, so a pid reused
 * by an unrelated process is never hit. Repeated a few times: a dying agent may still fork.
 */
export async function killMarked(match: (p: MarkedProcess) => boolean, graceMs: number): Promise<MarkedKillResult> {
  const found = new Set<number>();
  const signal = (sig: NodeJS.Signals): number[] => {
    const hit: number[] = [];
    for (const p of scanMarked()) {
      if (!match(p)) continue;
      found.add(p.pid);
      try {
        process.kill(p.pid, sig);
        hit.push(p.pid);
      } catch {
        // gone meanwhile
      }
    }
    return hit;
  };
  if (signal("SIGTERM").length === 0) return { found: [], survivors: [] };
  // A wait on this host: monotonic, so a wall-clock jump neither cuts the grace short nor stretches it by hours.
  const deadline = performance.now() + graceMs;
  while (performance.now() < deadline) {
    await sleep(50);
    if (!scanMarked().some(match)) return { found: [...found], survivors: [] };
  }
  for (let round = 0; round < 5; round++) {
    if (signal("SIGKILL").length === 0) break;
    await sleep(50);
  }
  return {
    found: [...found],
    survivors: scanMarked()
      .filter(match)
      .map((p) => p.pid),
  };
}
