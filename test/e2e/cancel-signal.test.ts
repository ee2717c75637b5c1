import { existsSync, readFileSync } from "node:fs";
import { describe, expect } from "vitest";
import { it } from "../helpers/fixtures.js";
import { duplicateDispatches, duplicateRuns } from "../helpers/checks.js";
import { goneByKill, livePids, pidAlive } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";
import { type AgentRun, E2E, E2E_TIMEOUT_MS, listDir, parseObj } from "../helpers/world.js";

// Cancel and signals against agents that fight back: they ignore SIGTERM and leave a grandchild
// that ignores it too. Nothing of any job may survive a cancel.

const STUBBORN = { implement: { grandchild: true, ignore_term: true, hang: true } };

interface Procs {
  pids: number[];
  pgids: number[];
}

/** Every agent pid, grandchild pid and process group the agents reported. */
function agentProcs(runs: readonly AgentRun[]): Procs {
  const pids = new Set<number>();
  const pgids = new Set<number>();
  for (const r of runs) {
    pids.add(r.pid);
    if (r.child_pid !== undefined) pids.add(r.child_pid);
    if (r.pgid !== null) pgids.add(r.pgid);
  }
  return { pids: [...pids], pgids: [...pgids] };
}

async function expectNothingLeft(p: Procs): Promise<void> {
  // Right after cancel returns: no live process of any job.
  expect(p.pids.filter(pidAlive)).toEqual([]);
  expect(p.pgids.filter((g) => livePids(g).length > 0)).toEqual([]);
  // And once the zombies are reaped (this container's init reaps lazily): ESRCH for every pid and group.
  await waitFor(() => p.pids.every(goneByKill) && p.pgids.every((g) => goneByKill(-g)), "every job pid and pgid to be gone (ESRCH)", { timeoutMs: 30_000 });
}

async function startStubborn(w: E2E, wave: string, items: string[]) {
  const proc = w.cli("start", ["--items", items.join(","), "--wave-id", wave]);
  await waitFor(() => w.runs().filter((r) => r.event === "grandchild").length === items.length, `${items.length} agents with grandchildren`);
  await waitFor(async () => (await w.events(wave)).filter((e) => e.event === "job_started").length === items.length, "job_started for each");
  const procs = agentProcs(w.runs());
  expect(procs.pids).toHaveLength(items.length * 2);
  expect(procs.pids.every(pidAlive)).toBe(true);
  return { proc, procs };
}

function expectCancelled(w: E2E, wave: string, items: string[]): void {
  const s = w.state(wave);
  expect(s?.status).toBe("cancelled");
  expect(s?.reason_code).toBe("wave_cancelled");
  for (const id of items) {
    const it = s?.items.find((i) => i.beads_id === id);
    expect(it).toMatchObject({ status: "cancelled", reason_code: "cancelled", run_instance: null });
    const outcome = parseObj(readFileSync(w.layout.outcomePath(wave, id, "implement", 1), "utf8"));
    expect(outcome).toMatchObject({ beads_id: id, phase: "implement", attempt: 1, result: "cancelled", reason_code: "cancelled" });
    expect(existsSync(w.layout.claimPath(id))).toBe(false);
  }
  expect(listDir(w.layout.leasesDir(wave)).filter((f) => f.endsWith(".lock"))).toEqual([]);
  expect(listDir(w.layout.jobsDir(wave))).toEqual([]);
  expect(existsSync(w.layout.controllerLock(wave))).toBe(false);
}

describe("cancel", { timeout: E2E_TIMEOUT_MS }, () => {
  it("during a run: the controller stops every job (agents and grandchildren ignoring SIGTERM), items are cancelled with cancel outcomes", async () => {
    const items = ["cn-1", "cn-2", "cn-3"];
    const w = new E2E({ items, scenario: { default: STUBBORN } });
    const { proc, procs } = await startStubborn(w, "w-cancel", items);

    const c = await w.run("cancel", ["--wave-id", "w-cancel", "--json"]);
    expect(c.code, c.stderr).toBe(0);
    expect(parseObj(c.stdout)).toMatchObject({ wave_id: "w-cancel", status: "cancelled", by: "controller" });
    await expectNothingLeft(procs);
    const r = await proc.exited;
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("wave w-cancel cancelled");
    expectCancelled(w, "w-cancel", items);
    // No attempt was dispatched after the cancel.
    const events = await w.events("w-cancel");
    const cancelSeq = events.find((e) => e.event === "wave_cancelled")?.seq ?? 0;
    expect(events.filter((e) => e.seq > cancelSeq && e.event === "item_dispatched")).toEqual([]);
    // A cancelled wave is final.
    const again = await w.run("cancel", ["--wave-id", "w-cancel"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error: wave_already_terminal: /m);
  });

  it("of a crashed wave (controller SIGKILLed first): cancel itself stops every job and finishes the cancel", async () => {
    const items = ["cc-1", "cc-2"];
    const w = new E2E({ items, scenario: { default: STUBBORN } });
    const { proc, procs } = await startStubborn(w, "w-crashcancel", items);
    process.kill(proc.pid, "SIGKILL");
    await proc.exited;
    expect(procs.pids.every(pidAlive)).toBe(true);

    const c = await w.run("cancel", ["--wave-id", "w-crashcancel", "--json"]);
    expect(c.code, c.stderr).toBe(0);
    expect(parseObj(c.stdout)).toMatchObject({ status: "cancelled", by: "cancel_command" });
    await expectNothingLeft(procs);
    expectCancelled(w, "w-crashcancel", items);
    const chk = await w.check("w-crashcancel");
    expect(chk.code).toBe(3);
    expect(chk.json).toMatchObject({ state: "cancelled", next_action: "review_outcomes_before_restart" });
  });
});

describe("signals", { timeout: E2E_TIMEOUT_MS }, () => {
  it("SIGTERM to a foreground start: exit 2, wave paused wave_paused_signal, jobs keep running; resume re-attaches and completes", async () => {
    const items = ["sg-1", "sg-2"];
    const w = new E2E({ items, scenario: { default: { implement: { gate: "go" } } } });
    const proc = w.cli("start", ["--items", items.join(","), "--wave-id", "w-sig"]);
    await waitFor(() => w.starts().length === 2, "both agents running");
    await waitFor(async () => (await w.events("w-sig")).filter((e) => e.event === "job_started").length === 2, "job_started for both");
    process.kill(proc.pid, "SIGTERM");
    const r = await proc.exited;
    expect(r.code, r.stderr).toBe(2);
    const s = w.state("w-sig");
    expect(s).toMatchObject({ status: "paused", reason_code: "wave_paused_signal" });
    expect(w.starts().every((a) => pidAlive(a.pid))).toBe(true);
    const c = await w.check("w-sig");
    expect(c.code).toBe(2);
    expect(c.json).toMatchObject({ state: "paused", next_action: "run_dx_batch_resume" });

    const resumed = w.cli("resume", ["--wave-id", "w-sig"]);
    await w.waitEvent("w-sig", (e) => e.event === "wave_resumed", "wave_resumed");
    w.openGate("go");
    const rr = await resumed.exited;
    expect(rr.code, rr.stderr).toBe(0);
    expect(w.state("w-sig")?.stats.approved).toBe(2);
    const events = await w.events("w-sig");
    expect(duplicateDispatches(events)).toEqual([]);
    expect(duplicateRuns(w.runs())).toEqual([]);
    // The implement jobs that ran across the pause were re-attached, not started again.
    expect(w.starts((a) => a.phase === "implement")).toHaveLength(2);
  });
});
