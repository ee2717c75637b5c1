import { spawn } from "node:child_process";
import { appendFileSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { describe, expect } from "vitest";
import { Ledger } from "../helpers/events.js";
import { buildCli } from "../helpers/build.js";
import { it, tmp } from "../helpers/fixtures.js";
import { expectRefusal, runCli } from "../helpers/cli.js";
import { sandbox, writeWave, type Sandbox } from "../helpers/world.js";
import { osLockPath, probeOsLock } from "../../src/store/os-lock.js";
import { waitFor } from "../helpers/wait.js";

// Read commands against what fencing leaves behind (issue 9): a corrupt ledger makes `check` exit
// 3 (the wave is unusable), and a line of a superseded controller epoch is voided, reported by
// doctor, and never fails status, check or report.

const bin = buildCli();
const W = "wave-1";
const cli = (sb: Sandbox, ...args: string[]) => runCli(bin, [...args, "--config", sb.configPath, "--wave-id", W], { cwd: sb.root });
const story = () => new Ledger({ items: ["bd-a1", "bd-b2"] }).start().dispatch("bd-a1", "implement", "opencode").jobStarted("bd-a1");

describe("read commands and epochs", () => {
  it("check exits 3 on a corrupt ledger (not 1)", async () => {
    const sb = sandbox(tmp);
    writeWave(sb, W, story().events);
    const file = sb.layout.itemLedger(W, "bd-a1");
    const lines = readFileSync(file, "utf8").split("\n");
    writeFileSync(file, [lines[0], "{not json", ...lines.slice(1)].join("\n"));
    expectRefusal(await cli(sb, "check", "--json"), "ledger_corrupt", 3);
  });

  it("a superseded epoch's line is voided: status, check and report work, doctor reports it", async () => {
    const sb = sandbox(tmp);
    const events = story().events;
    writeWave(sb, W, events);
    const n = events.length;
    const at = "2026-01-01T00:05:00.000Z";
    // The new controller opened epoch 2 at n+1; the old one (epoch 1) slipped a line in at n+1 too.
    appendFileSync(sb.layout.waveLedger(W), `${JSON.stringify({ event: "controller_acquired", epoch: 2, pid: 2, host: "b", seq: n + 1, at })}\n`);
    appendFileSync(sb.layout.waveLedger(W), `${JSON.stringify({ event: "wave_paused", reason_code: "wave_paused_signal", seq: n + 1, at, epoch: 1 })}\n`);
    for (const cmd of ["status", "report"]) expect((await cli(sb, cmd)).code).toBe(0);
    const check = await cli(sb, "check", "--json");
    expect(check.code).toBe(2); // running, no controller: controller_dead, not paused
    expect(JSON.parse(check.stdout)).toMatchObject({ state: "running", reason_code: "controller_dead" });
    const doc = await cli(sb, "doctor", "--json");
    expect(doc.stdout).toContain("ledger_superseded_line");
  });

  it("doctor, status and check take a controller that holds the OS lock for alive, however old its heartbeat: controller_frozen, and --fix repairs nothing under it", async () => {
    const sb = sandbox(tmp);
    writeWave(sb, W, story().events);
    const old = "2020-01-01T00:00:00.000Z";
    writeFileSync(
      sb.layout.controllerLock(W),
      JSON.stringify({ pid: 4242, start_time: "x", host: "frozen-host", started_at: old, heartbeat_at: old, epoch: 1, token: "t" }),
    );
    // The frozen controller's OS lock (another host sharing this filesystem holds it).
    const flock = osLockPath(sb.layout.controllerLock(W));
    writeFileSync(flock, "");
    const holder = spawn("flock", ["--exclusive", flock, "sleep", "120"], { stdio: "ignore", detached: true });
    const ended = new Promise((r) => holder.once("exit", r));
    try {
      await waitFor(() => probeOsLock(flock, {}) === "held", "the OS lock is held");
      // status and check say so too: not controller_dead with a resume that would refuse.
      const check = await cli(sb, "check", "--json");
      expect(check.code).toBe(2);
      expect(JSON.parse(check.stdout)).toMatchObject({
        state: "running",
        reason_code: "controller_frozen",
        next_action: "wake_or_stop_frozen_controller",
        controller: { pid: 4242, host: "frozen-host", alive: true, frozen: true },
      });
      const status = JSON.parse((await cli(sb, "status", "--json")).stdout) as { reason_code: string; next_command: string };
      expect(status.reason_code).toBe("controller_frozen");
      expect(status.next_command).toMatch(/^dx-batch doctor --wave-id wave-1/);
      rmSync(sb.layout.waveState(W)); // something --fix would rebuild under a dead controller
      const doc = JSON.parse((await cli(sb, "doctor", "--fix", "--json")).stdout) as { issues: { type: string }[]; recommendations: string[] };
      const types = doc.issues.map((i) => i.type);
      expect(types).toContain("controller_frozen");
      expect(types).not.toContain("controller_dead");
      expect(doc.recommendations.join("\n")).toContain("kill -CONT 4242");
      expect(existsSync(sb.layout.waveState(W))).toBe(false);
    } finally {
      if (holder.pid !== undefined) process.kill(-holder.pid, "SIGKILL");
      await ended;
    }
    // The lock released (the holder died), the stale heartbeat decides: dead, and --fix repairs.
    expect(JSON.parse((await cli(sb, "check", "--json")).stdout)).toMatchObject({
      reason_code: "controller_dead",
      controller: { alive: false, frozen: false },
    });
    const doc = JSON.parse((await cli(sb, "doctor", "--fix", "--json")).stdout) as { issues: { type: string }[] };
    expect(doc.issues.map((i) => i.type)).toContain("controller_dead");
    expect(existsSync(sb.layout.waveState(W))).toBe(true);
  });
});
