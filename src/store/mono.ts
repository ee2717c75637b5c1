import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { linuxBootId, processStartTime } from "./proc.js";

// Durations on this host are measured with a monotonic clock, never with the wall clock (SPEC
// §15.3): an NTP step, a suspended laptop's catch-up or an operator's `date -s` must change no
// decision (a runtime limit, a stall, a cooldown, a lease's or a heartbeat's age).
//
// `process.hrtime` reads CLOCK_MONOTONIC (mach_absolute_time on macOS): it counts from boot and is
// the same clock for every process of the host, so a stamp taken by one process can be aged by
// another one (a resumed controller ageing the lease its dead predecessor took) as long as both
// ran in the same boot; the boot id in the stamp says so. A process's own age comes from /proc:
// its start time in clock ticks since boot against /proc/uptime. The wall clock remains for what
// people read, and for another host's heartbeat, which no local monotonic clock can age.

/** Milliseconds on this host's monotonic clock (since boot; comparable across its processes). */
export function monoNowMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

export interface MonoStamp {
  /** Boot id (Linux), so a stamp of a previous boot is never aged against this one's clock. */
  boot: string;
  ms: number;
}

export function monoStamp(): MonoStamp {
  return { boot: linuxBootId(), ms: monoNowMs() };
}

/** How long ago `s` was taken, or null when it was taken in another boot (or is missing). */
export function monoAgeMs(s: MonoStamp | null | undefined, now: MonoStamp = monoStamp()): number | null {
  if (s === null || s === undefined || s.boot !== now.boot) return null;
  return Math.max(0, now.ms - s.ms);
}

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      const v = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 5_000 }).trim());
      clkTck = Number.isFinite(v) && v > 0 ? v : 100;
    } catch {
      clkTck = 100; // USER_HZ is 100 on every Linux architecture in use
    }
  }
  return clkTck;
}

/** Seconds since boot from /proc/uptime, or null off Linux. */
function uptimeSec(): number | null {
  try {
    const v = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/** How long `pid` has been running, from /proc (ticks since boot vs uptime); null if unknown. */
export function processAgeMs(pid: number): number | null {
  const st = processStartTime(pid);
  const up = uptimeSec();
  if (st === null || up === null) return null;
  const ticks = Number(st.slice(st.lastIndexOf(":") + 1));
  if (!Number.isFinite(ticks)) return null;
  return Math.max(0, (up - ticks / ticksPerSecond()) * 1000);
}
