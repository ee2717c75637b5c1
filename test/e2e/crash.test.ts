import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import type { WaveEvent } from "../../src/core/events.js";
import { it } from "../helpers/fixtures.js";
import { dispatches, duplicateDispatches, duplicateRuns, finishes, racingRuns } from "../helpers/checks.js";
import { type CliProc, pidAlive } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";
import { E2E, E2E_TIMEOUT_MS, listDir } from "../helpers/world.js";

// SIGKILL of the controller at three points. For each: `check` says controller_dead / resume,
// `resume` completes the wave, no (item, phase, attempt) is dispatched twice and no finished
// attempt is run again (by the ledger and by the agents' own records).

/** Raw scan of the item ledgers, fast enough to catch the controller in the middle of a cycle. */
function ledgerText(w: E2E, wave: string): string {
  const dir = w.layout.itemLedgersDir(wave);
  return listDir(dir)
    .map((f) => {
      try {
        return readFileSync(path.join(dir, f), "utf8");
      } catch {
        return "";
      }
    })
    .join("");
}

async function killWhen(w: E2E, proc: CliProc, wave: string, pred: (ledger: string) => boolean, what: string): Promise<void> {
  await waitFor(() => pred(ledgerText(w, wave)), what, { intervalMs: 2 });
  process.kill(proc.pid, "SIGKILL");
  const r = await proc.exited;
  expect(r.signal).toBe("SIGKILL");
}

async function expectDeadControllerThenResume(w: E2E, wave: string, beforeResume?: () => Promise<void>): Promise<WaveEvent[]> {
  const c = await w.check(wave);
  expect(c.code).toBe(2);
  expect(c.json).toMatchObject({ wave_id: wave, reason_code: "controller_dead", next_action: "run_dx_batch_resume" });
  await beforeResume?.();
  const r = await w.expectExit("resume", ["--wave-id", wave], 0);
  expect(r.stdout).toContain(`wave ${wave} completed`);
  const after = await w.check(wave);
  expect(after.code).toBe(0);
  expect(after.json).toMatchObject({ state: "completed", reason_code: "wave_completed" });
  const events = await w.events(wave);
  expect(duplicateDispatches(events)).toEqual([]);
  expect(duplicateRuns(w.runs(), wave)).toEqual([]);
  expect(racingRuns(w.runs())).toEqual([]);
  // Every job ran under the run_instance of its one `item_dispatched` (SPEC §8), including a job
  // the dead controller had dispatched but not started.
  for (const d of dispatches(events)) {
    const ran = w.starts((r) => r.item === d.item_id && r.phase === d.phase && r.attempt === d.attempt);
    expect(ran.map((r) => r.run_instance)).toEqual([d.run_instance]);
  }
  // No finished implement attempt is followed by another dispatch of the same attempt.
  for (const f of finishes(events)) {
    const again = dispatches(events).filter((d) => d.seq > f.seq && d.item_id === f.item_id && d.phase === f.phase && d.attempt === f.attempt);
    expect(again).toEqual([]);
  }
  expect(listDir(w.layout.jobsDir(wave))).toEqual([]);
  expect(listDir(w.layout.leasesDir(wave)).filter((f) => f.endsWith(".lock"))).toEqual([]);
  return events;
}

describe("the controller killed with SIGKILL, then resumed", { timeout: E2E_TIMEOUT_MS }, () => {
  it("while it dispatches (right after the first item_dispatched is on disk)", async () => {
    const items = ["kd-1", "kd-2", "kd-3", "kd-4", "kd-5", "kd-6"];
    // The tracker holds the dispatch-time `bd show kd-2` (the first is start's check of the item; the
    // held one never answers): the controller is inside its dispatch loop when it is killed.
    const w = new E2E({
      items,
      tracker: { bd: {} },
      scenario: { default: { implement: { sleep_ms: 300 } } },
      config: { max_parallel: 6 },
    });
    const proc = w.cli("start", ["--items", items.join(","), "--wave-id", "w-kd"], { env: { FAKE_BD_HOLD: "show kd-2 ", FAKE_BD_HOLD_AFTER: "1" } });
    await waitFor(() => existsSync(w.bdLog) && readFileSync(w.bdLog, "utf8").includes('"held":true'), "the held tracker call");
    await killWhen(w, proc, "w-kd", (t) => t.includes('"item_dispatched"'), "the first item_dispatched");
    const atKill = dispatches(await w.events("w-kd")).length;
    expect(atKill).toBeGreaterThan(0);
    expect(atKill).toBeLessThan(items.length);

    const events = await expectDeadControllerThenResume(w, "w-kd");
    const s = w.state("w-kd");
    expect(s?.stats).toMatchObject({ total: 6, approved: 6 });
    // Each implement attempt 1 was dispatched exactly once across both controllers.
    expect(dispatches(events).filter((d) => d.phase === "implement")).toHaveLength(6);
    expect(events.filter((e) => e.event === "wave_resumed")).toHaveLength(1);
  });

  it("before its first dispatch (after preflight): check says pending/start_or_resume_wave, resume runs the wave from the start", async () => {
    const items = ["k0-1", "k0-2"];
    // The tracker holds `bd --version` (after preflight, before wave_started): the kill lands in between.
    const w = new E2E({ items, tracker: { bd: {} } });
    const proc = w.cli("start", ["--items", items.join(","), "--wave-id", "w-k0"], { env: { FAKE_BD_HOLD: "--version" } });
    await waitFor(() => existsSync(w.bdLog) && readFileSync(w.bdLog, "utf8").includes('"held":true'), "the held bd --version");
    await waitFor(() => readFileSync(w.layout.waveLedger("w-k0"), "utf8").includes('"preflight_recorded"'), "preflight_recorded");
    process.kill(proc.pid, "SIGKILL");
    await proc.exited;
    expect((await w.events("w-k0")).map((e) => e.event)).toEqual(["wave_created", "preflight_recorded"]);
    const c = await w.check("w-k0");
    expect(c.code).toBe(0);
    expect(c.json).toMatchObject({ state: "pending", next_action: "start_or_resume_wave", controller: { alive: false } });
    // start refuses the existing wave and points at resume.
    const again = await w.run("start", ["--items", items.join(","), "--wave-id", "w-k0"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error: wave_exists: .*\nremedy: .*dx-batch resume --wave-id w-k0/m);
    const r = await w.expectExit("resume", ["--wave-id", "w-k0"], 0);
    expect(r.stdout).toContain("wave w-k0 completed");
    expect(w.state("w-k0")?.stats.approved).toBe(2);
    expect(duplicateDispatches(await w.events("w-k0"))).toEqual([]);
  });

  it("while jobs run: jobs keep running, those that end meanwhile are processed from their files, the others are re-attached", async () => {
    const items = ["kr-1", "kr-2", "kr-3", "kr-4"];
    const scenario = { items: Object.fromEntries(items.map((i) => [i, { implement: { gate: `impl-${i}` } }])) };
    const w = new E2E({ items, scenario, config: { max_parallel: 4 } });
    const proc = w.cli("start", ["--items", items.join(","), "--wave-id", "w-kr"]);
    await waitFor(() => w.starts((r) => r.phase === "implement").length === 4, "4 implement agents running");
    await waitFor(async () => (await w.events("w-kr")).filter((e) => e.event === "job_started").length === 4, "4 job_started");
    process.kill(proc.pid, "SIGKILL");
    await proc.exited;

    // The agents outlive their controller.
    const agents = w.starts();
    expect(agents.every((a) => pidAlive(a.pid))).toBe(true);

    await expectDeadControllerThenResume(w, "w-kr", async () => {
      // Two jobs end while no controller is alive: their rc and contract wait on disk.
      w.openGate("impl-kr-1");
      w.openGate("impl-kr-2");
      await waitFor(() => ["kr-1", "kr-2"].every((i) => existsSync(path.join(w.runnerLogDir, "agent-a", `${i}.rc`))), "kr-1 and kr-2 to exit");
      // The other two are released once the new controller has re-attached them.
      void waitFor(async () => (await w.events("w-kr")).some((e) => e.event === "wave_resumed"), "wave_resumed").then(() => {
        w.openGate("impl-kr-3");
        w.openGate("impl-kr-4");
      });
    });
    const s = w.state("w-kr");
    expect(s?.stats).toMatchObject({ total: 4, approved: 4 });
    for (const it of s?.items ?? []) expect(it.history.filter((h) => h.phase === "implement")).toHaveLength(1);
  });

  it("and a job that vanished meanwhile (its whole group SIGKILLed, no rc) is a failed attempt, runner_job_lost, retried", async () => {
    const items = ["kv-1", "kv-2"];
    const w = new E2E({ items, scenario: { items: { "kv-1": { implement: [{ gate: "never" }, {}] }, "kv-2": { implement: { gate: "kv-2" } } } } });
    const proc = w.cli("start", ["--items", items.join(","), "--wave-id", "w-kv"]);
    await waitFor(async () => (await w.events("w-kv")).filter((e) => e.event === "job_started").length === 2, "both jobs started");
    // job_started is recorded once the process exists; the agent's own start record comes a moment later.
    await waitFor(() => w.starts((r) => r.item === "kv-1").length > 0, "the kv-1 agent to record its start");
    process.kill(proc.pid, "SIGKILL");
    await proc.exited;
    const lost = w.starts((r) => r.item === "kv-1")[0];
    expect(lost?.pgid).toBeTruthy();
    process.kill(-(lost?.pgid ?? 0), "SIGKILL");
    await waitFor(() => !pidAlive(lost?.pid ?? 0), "the kv-1 job to vanish");

    await expectDeadControllerThenResume(w, "w-kv", () => {
      void w.waitEvent("w-kv", (e) => e.event === "wave_resumed", "wave_resumed").then(() => w.openGate("kv-2"));
      return Promise.resolve();
    });
    const kv1 = w.state("w-kv")?.items.find((i) => i.beads_id === "kv-1");
    expect(kv1?.status).toBe("approved");
    expect(kv1?.history[0]).toMatchObject({ phase: "implement", attempt: 1, provider: "agent-a", reason_code: "runner_job_lost" });
    expect(kv1?.history[1]).toMatchObject({ phase: "implement", attempt: 2, provider: "agent-b" });
    expect(w.prompt("kv-1", "implement", 2, "agent-b")).toContain("runner_job_lost");
  });

  it("between implement and review (right after an implement job_finished)", async () => {
    const items = ["kb-1", "kb-2", "kb-3"];
    const w = new E2E({ items, scenario: { default: { implement: { sleep_ms: 200 }, review: { sleep_ms: 200 } } } });
    const proc = w.cli("start", ["--items", items.join(","), "--wave-id", "w-kb"]);
    await killWhen(
      w,
      proc,
      "w-kb",
      (t) => /"event":"job_finished"[^\n]*"phase":"implement"|"phase":"implement"[^\n]*"event":"job_finished"/.test(t),
      "an implement job_finished",
    );

    const events = await expectDeadControllerThenResume(w, "w-kb");
    expect(w.state("w-kb")?.stats).toMatchObject({ total: 3, approved: 3 });
    // Exactly one implement and one review per item: the finished implement was not redone.
    for (const id of items) {
      expect(
        dispatches(events)
          .filter((d) => d.item_id === id)
          .map((d) => `${d.phase}:${d.attempt}`),
      ).toEqual(["implement:1", "review:1"]);
      expect(w.starts((r) => r.item === id).map((r) => `${r.phase}:${r.attempt}`)).toEqual(["implement:1", "review:1"]);
    }
  });
});
