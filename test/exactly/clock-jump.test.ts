import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { cleanupAll, E2E, E2E_TIMEOUT_MS } from "../helpers/world.js";
import { finishes } from "../helpers/checks.js";
import { waitFor } from "../helpers/wait.js";

// Issue 9, wall-clock jumps: the controller and its agents run under libfaketime, and the wall
// clock is moved by ±3 hours in the middle of the wave (a timestamp file re-read every second).
// CLOCK_MONOTONIC is left alone (FAKETIME_DONT_FAKE_MONOTONIC=1): that is what a real jump (NTP
// step, `date -s`, a VM restored from a snapshot) does. No agent may be killed for its runtime
// and a stall must still be detected on time. `.ci/run` installs `faketime` from the Debian archive.

afterEach(cleanupAll);

// Debian puts the library under its multiarch directory (x86_64-linux-gnu, aarch64-linux-gnu, …).
const multiarch = (() => {
  try {
    return readdirSync("/usr/lib").filter((d) => d.endsWith("-linux-gnu"));
  } catch {
    return [];
  }
})();
const LIB = [
  ...multiarch.map((d) => `/usr/lib/${d}/faketime/libfaketime.so.1`),
  "/usr/lib/faketime/libfaketime.so.1",
  "/usr/local/lib/faketime/libfaketime.so.1",
].find((p) => existsSync(p));
// Skipped only where faketime is not installed at all; where it is (CI installs it), a library
// this test cannot find fails it instead of skipping it silently.
const HAVE_FAKETIME = spawnSync("faketime", ["--version"], { stdio: "ignore" }).error === undefined;

it.runIf(HAVE_FAKETIME)("libfaketime is found where faketime is installed", () => {
  expect(LIB, "faketime is installed but libfaketime.so.1 was not found").toBeDefined();
});

function faketimeEnv(w: E2E): { env: Record<string, string>; jump: (offset: string) => void } {
  const file = path.join(w.root, "faketime.offset");
  writeFileSync(file, "+0\n");
  return {
    env: { LD_PRELOAD: LIB ?? "", FAKETIME_TIMESTAMP_FILE: file, FAKETIME_CACHE_DURATION: "1", FAKETIME_DONT_FAKE_MONOTONIC: "1" },
    jump: (offset) => writeFileSync(file, `${offset}\n`),
  };
}

describe.skipIf(LIB === undefined)("wall-clock jumps mid-wave (libfaketime)", { timeout: E2E_TIMEOUT_MS }, () => {
  for (const offset of ["+3h", "-3h"]) {
    it(`${offset}: no agent is killed for its runtime, and a stall is still detected on time`, async () => {
      const w = new E2E({
        items: ["fj-ok1", "fj-ok2", "fj-stall"],
        scenario: { default: { implement: { sleep_ms: 4_000 } }, items: { "fj-stall": { implement: { hang: "silent" } } } },
        // 9 s stall threshold; the default 120 min runtime limit that a +3h jump used to trip.
        config: { max_parallel: 3, stall_minutes: 0.15, retry_chain: ["agent-a", "blocked"], review_provider: "agent-b" },
      });
      const ft = faketimeEnv(w);
      const proc = w.cli("start", ["--items", "fj-ok1,fj-ok2,fj-stall", "--wave-id", "w-fj"], { env: ft.env });
      await w.waitEvent("w-fj", (e) => e.event === "job_started" && e.item_id === "fj-stall", "the hanging job started", 60_000);
      const startedAt = performance.now();
      await waitFor(async () => (await w.events("w-fj")).filter((e) => e.event === "job_started").length === 3, "three jobs started");
      ft.jump(offset);
      // The stall: 9 s without progress, checked every ~2 s; the jump must neither hide nor hasten it.
      const stalled = await w.waitEvent("w-fj", (e) => e.event === "job_finished" && e.item_id === "fj-stall", "the stall", 40_000);
      const sinceStartMs = performance.now() - startedAt;
      expect(stalled).toMatchObject({ state: "stalled" });
      expect(sinceStartMs).toBeGreaterThan(8_000);
      expect(sinceStartMs).toBeLessThan(25_000);
      const r = await proc.exited;
      expect(r.code === 0 || r.code === 4, r.stderr).toBe(true);
      const events = await w.events("w-fj");
      const runtimeKills = finishes(events).filter((f) => f.state === "timed_out" || f.runner_reason === "max_runtime_exceeded");
      expect(runtimeKills).toEqual([]);
      const s = w.state("w-fj");
      const st = (id: string) => {
        const it = s?.items.find((i) => i.beads_id === id);
        return `${it?.status ?? "?"} ${it?.reason_code ?? "?"}`;
      };
      expect(st("fj-ok1")).toBe("approved approved");
      expect(st("fj-ok2")).toBe("approved approved");
      expect(st("fj-stall")).toMatch(/^blocked /);
    });
  }
});
