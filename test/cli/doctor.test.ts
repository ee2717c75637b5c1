import { existsSync } from "node:fs";
import { describe, expect } from "vitest";
import { acquireLease } from "../../src/store/lease.js";
import { registerJobPid } from "../../src/store/pids.js";
import { hostName } from "../../src/store/proc.js";
import { Ledger } from "../helpers/events.js";
import { buildCli } from "../helpers/build.js";
import { it, tmp } from "../helpers/fixtures.js";
import { expectRefusal, runCli } from "../helpers/cli.js";
import { sleeper, deadProcess } from "../helpers/procs.js";
import { holdControllerLock, parseJson, sandbox, writeWave, type Sandbox } from "../helpers/world.js";

// `doctor` (SPEC §12): the JSON shape, exit 0 without issues and 1 with, and what --fix repairs:
// pid files of dead processes and leases held by dead processes, both created through the store.

const bin = buildCli();

const W = "wave-d";
const doctor = (sb: Sandbox, ...flags: string[]) => runCli(bin, ["doctor", "--config", sb.configPath, "--wave-id", W, ...flags], { cwd: sb.root });

interface DoctorDoc {
  wave_id: string;
  ok: boolean;
  issues: { type: string; severity: string; message: string; item?: string }[];
  fixed: string[];
  recommendations: string[];
}
/** The document without the notes about roots under /tmp (every test sandbox is there). */
const doc = (stdout: string): DoctorDoc => {
  const d = parseJson(stdout) as DoctorDoc;
  return { ...d, issues: d.issues.filter((i) => i.type !== "state_root_in_tmp") };
};

const completed = () =>
  new Ledger({ items: ["bd-a1", "bd-b2"] })
    .start()
    .implement("bd-a1", "opencode", "completed")
    .review("bd-a1", "cc-glm", "APPROVED")
    .implement("bd-b2", "opencode", "blocked");
/** Paused before any dispatch: nothing active, so only what a test plants is an issue. */
const pausedIdle = () => new Ledger({ items: ["bd-a1", "bd-b2"] }).start().pause();

function leaseFor(sb: Sandbox, holder: { pid: number; start_time: string | null }, item: string, attempt: number): string {
  const file = sb.layout.leasePath(W, item, attempt);
  const r = acquireLease(file, { ...holder, host: hostName(), wave_id: W, item_id: item, attempt }, { ttlMs: 60 * 60_000, nowMs: Date.now() });
  if (!r.acquired) throw new Error("lease not acquired");
  return file;
}

function pidFileFor(sb: Sandbox, p: { pid: number; start_time: string | null }, item: string): string {
  return registerJobPid(sb.layout, {
    pid: p.pid,
    pgid: p.pid,
    wave_id: W,
    item_id: item,
    phase: "implement",
    attempt: 1,
    run_instance: `ri-${item}`,
    registered_at: new Date().toISOString(),
    start_time: p.start_time,
  });
}

describe("doctor", () => {
  it("a healthy wave: exit 0 and exactly {wave_id, ok, issues, fixed, recommendations}", async () => {
    const sb = sandbox(tmp);
    writeWave(sb, W, completed().events);
    const r = await doctor(sb, "--json");
    expect(r.code, r.stderr).toBe(0);
    expect(doc(r.stdout)).toEqual({ wave_id: W, ok: true, issues: [], fixed: [], recommendations: [] });
    expect((parseJson(r.stdout) as DoctorDoc).issues.map((i) => [i.type, i.severity])).toEqual([
      ["state_root_in_tmp", "info"],
      ["state_root_in_tmp", "info"],
      ["state_root_in_tmp", "info"],
    ]);
    const h = await doctor(sb);
    expect(h.code).toBe(0);
    expect(h.stdout).toBe(`wave ${W}: no issues\n`);
  });

  it("reports a stale lease and dead pid files (exit 1); --fix releases and prunes them and leaves live ones alone", async () => {
    const sb = sandbox(tmp);
    writeWave(sb, W, pausedIdle().events);
    const dead = await deadProcess();
    const live = await sleeper();
    const staleLease = leaseFor(sb, dead, "bd-a1", 1);
    const liveLease = leaseFor(sb, live, "bd-b2", 1);
    const deadPid = pidFileFor(sb, dead, "bd-a1");
    const livePid = pidFileFor(sb, live, "bd-b2");

    const before = await doctor(sb, "--json");
    expect(before.code, before.stderr).toBe(1);
    const d = doc(before.stdout);
    expect(d.wave_id).toBe(W);
    expect(d.ok).toBe(false);
    expect(d.fixed).toEqual([]);
    for (const i of d.issues) {
      expect(Object.keys(i).every((k) => ["type", "severity", "message", "item"].includes(k))).toBe(true);
      expect(["critical", "warning", "info"]).toContain(i.severity);
      expect(i.message.length).toBeGreaterThan(0);
    }
    expect(d.issues.map((i) => [i.type, i.severity, i.item])).toEqual([
      ["stale_lease", "warning", "bd-a1"],
      ["stale_pid_files", "info", undefined],
    ]);
    expect(d.issues[0]?.message).toContain(`pid ${dead.pid}`);
    expect(d.issues[1]?.message).toMatch(/^1 pid file/);
    expect(d.recommendations).toContain(`dx-batch doctor --wave-id ${W} --fix`);
    expect(existsSync(staleLease) && existsSync(deadPid)).toBe(true);

    const fix = await doctor(sb, "--json", "--fix");
    expect(fix.code).toBe(1);
    const f = doc(fix.stdout);
    expect(f.fixed).toEqual([`released stale lease bd-a1+attempt1.lock`, "pruned 1 dead pid file(s)"]);
    expect(existsSync(staleLease)).toBe(false);
    expect(existsSync(deadPid)).toBe(false);
    expect(existsSync(liveLease)).toBe(true);
    expect(existsSync(livePid)).toBe(true);

    const after = await doctor(sb, "--json");
    expect(after.code, after.stdout).toBe(0);
    expect(doc(after.stdout)).toEqual({ wave_id: W, ok: true, issues: [], fixed: [], recommendations: [] });
  });

  it("a running wave whose controller died: controller_dead and the active item without a runner job", async () => {
    const sb = sandbox(tmp);
    writeWave(sb, W, new Ledger({ items: ["bd-a1", "bd-b2"] }).start().dispatch("bd-a1", "implement", "opencode").jobStarted("bd-a1").events);
    holdControllerLock(sb, W, await deadProcess());
    const r = await doctor(sb, "--json");
    expect(r.code).toBe(1);
    const d = doc(r.stdout);
    expect(d.ok).toBe(false);
    expect(d.issues.map((i) => [i.type, i.severity, i.item])).toEqual([
      ["controller_dead", "warning", undefined],
      ["active_item_without_job", "warning", "bd-a1"],
    ]);
    expect(d.recommendations).toContain(`dx-batch resume --wave-id ${W}`);

    const h = await doctor(sb);
    expect(h.code).toBe(1);
    expect(h.stdout).toMatch(/^warning: controller_dead: /m);
    expect(h.stdout).toMatch(/^warning: active_item_without_job \[bd-a1\]: /m);
    expect(h.stdout).toContain(`recommend: dx-batch resume --wave-id ${W}`);
  });

  it("a running wave with a live controller is not diagnosed as dead", async () => {
    const sb = sandbox(tmp);
    writeWave(sb, W, new Ledger({ items: ["bd-a1"] }).start().events);
    holdControllerLock(sb, W, await sleeper());
    const r = await doctor(sb, "--json");
    expect(r.code, r.stdout).toBe(0);
    expect(doc(r.stdout).issues).toEqual([]);
  });

  it("a missing wave: error wave_not_found, exit 1, and --json still prints one document", async () => {
    const sb = sandbox(tmp);
    const j = await doctor(sb, "--json");
    expectRefusal(j, "wave_not_found");
    expect(doc(j.stdout)).toMatchObject({ wave_id: W, ok: false, issues: [{ type: "wave_not_found", severity: "critical" }] });
    const h = await doctor(sb);
    expectRefusal(h, "wave_not_found");
    expect(h.stdout).toBe("");
  });
});
