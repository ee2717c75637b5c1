import { describe, expect } from "vitest";
import { ITEM_STATUSES } from "../../src/core/status.js";
import { Ledger } from "../helpers/events.js";
import { buildCli } from "../helpers/build.js";
import { it, tmp } from "../helpers/fixtures.js";
import { expectRefusal, runCli } from "../helpers/cli.js";
import { sleeper, deadProcess } from "../helpers/procs.js";
import { holdControllerLock, parseJson, sandbox, writeWave, type Sandbox } from "../helpers/world.js";

// `check` exit codes (SPEC §2) and the `status --json` document, over waves written through the
// store API with a controller lock held by a live process, a dead one, or nobody.

const bin = buildCli();

const W = "wave-1";
const cli = (sb: Sandbox, ...args: string[]) => runCli(bin, [...args, "--config", sb.configPath, "--wave-id", W], { cwd: sb.root });

type Controller = "live" | "dead" | "none";

async function wave(events: Ledger, controller: Controller): Promise<Sandbox> {
  const sb = sandbox(tmp);
  writeWave(sb, W, events.events);
  if (controller === "live") holdControllerLock(sb, W, await sleeper());
  if (controller === "dead") holdControllerLock(sb, W, await deadProcess());
  return sb;
}

const twoItems = () => new Ledger({ items: ["bd-a1", "bd-b2"] });
const running = () => twoItems().start().dispatch("bd-a1", "implement", "opencode").jobStarted("bd-a1");

interface CheckCase {
  name: string;
  events: () => Ledger;
  controller: Controller;
  exit: number;
  state: string;
  reason_code: string;
  next_action: string;
  /** next_command without its `--config <file>` tail (issue #13). */
  next: string;
}

const CASES: CheckCase[] = [
  {
    name: "running with a live controller",
    events: running,
    controller: "live",
    exit: 0,
    state: "running",
    reason_code: "wave_running",
    next_action: "monitor_wave_until_terminal",
    next: "status --wave-id wave-1 --watch",
  },
  {
    name: "pending (created, never started)",
    events: twoItems,
    controller: "none",
    exit: 0,
    state: "pending",
    reason_code: "wave_pending",
    next_action: "start_or_resume_wave",
    next: "resume --wave-id wave-1",
  },
  {
    name: "completed",
    events: () =>
      twoItems().start().implement("bd-a1", "opencode", "completed").review("bd-a1", "cc-glm", "APPROVED").implement("bd-b2", "opencode", "blocked"),
    controller: "none",
    exit: 0,
    state: "completed",
    reason_code: "wave_completed",
    next_action: "review_report_and_close_items",
    next: "retry --wave-id wave-1",
  },
  {
    name: "paused",
    events: () => running().pause(),
    controller: "none",
    exit: 2,
    state: "paused",
    reason_code: "wave_paused_signal",
    next_action: "run_dx_batch_resume",
    next: "resume --wave-id wave-1",
  },
  {
    name: "running with a dead controller",
    events: running,
    controller: "dead",
    exit: 2,
    state: "running",
    reason_code: "controller_dead",
    next_action: "run_dx_batch_resume",
    next: "resume --wave-id wave-1",
  },
  {
    name: "running with no controller lock at all",
    events: running,
    controller: "none",
    exit: 2,
    state: "running",
    reason_code: "controller_dead",
    next_action: "run_dx_batch_resume",
    next: "resume --wave-id wave-1",
  },
  {
    name: "failed",
    events: () => running().fail("exec_saturation"),
    controller: "none",
    exit: 3,
    state: "failed",
    reason_code: "exec_saturation",
    next_action: "run_dx_runner_prune_then_dx_batch_doctor",
    next: "runner prune --config CONFIG && dx-batch doctor --wave-id wave-1",
  },
  {
    name: "cancelled",
    events: () => running().cancel(),
    controller: "none",
    exit: 3,
    state: "cancelled",
    reason_code: "wave_cancelled",
    next_action: "review_outcomes_before_restart",
    next: "report --wave-id wave-1",
  },
];

describe("check", () => {
  it.each(CASES.map((c) => [c.name, c]))("%s", async (_n, c) => {
    const sb = await wave(c.events(), c.controller);
    const j = await cli(sb, "check", "--json");
    expect(j.code, j.stderr).toBe(c.exit);
    const doc = parseJson(j.stdout) as Record<string, unknown>;
    expect(Object.keys(doc).sort()).toEqual(["controller", "next_action", "next_command", "reason_code", "stats", "state", "wave_id"].sort());
    expect(doc).toMatchObject({ wave_id: W, state: c.state, reason_code: c.reason_code, next_action: c.next_action });
    // The exact command line, with this wave's id and the config the check used.
    expect(doc.next_command).toBe(`dx-batch ${c.next.replace("CONFIG", sb.configPath)} --config ${sb.configPath}`);
    expect(doc.controller).toMatchObject({ alive: c.controller === "live" });
    if (c.controller === "none") expect(doc.controller).toMatchObject({ pid: null });
    else expect(doc.controller).toMatchObject({ pid: expect.any(Number) });

    const h = await cli(sb, "check");
    expect(h.code).toBe(c.exit);
    expect(h.stdout).toContain(`${W}: ${c.state} (${c.reason_code}); next action: ${c.next_action}`);
    expect(h.stdout).toContain(`next: ${String(doc.next_command)}\n`);
    // status carries the same next_command, in its JSON and its text.
    const st = await cli(sb, "status", "--json");
    expect((parseJson(st.stdout) as Record<string, unknown>).next_command).toBe(doc.next_command);
    expect((await cli(sb, "status")).stdout).toContain(`next: ${String(doc.next_command)}\n`);
  });

  it("a missing wave: exit 3, wave_not_found, and --json still prints one JSON document", async () => {
    const sb = sandbox(tmp);
    const j = await cli(sb, "check", "--json");
    expect(j.code).toBe(3);
    expect(parseJson(j.stdout)).toEqual({
      wave_id: W,
      state: "missing",
      reason_code: "wave_not_found",
      next_action: "start_or_resume_wave",
      stats: null,
      controller: null,
    });
    const h = await cli(sb, "check");
    expectRefusal(h, "wave_not_found", 3);
    expect(h.stdout).toBe("");
  });
});

describe("status --json", () => {
  it("carries the seed's wave fields, per-item reason_code and next_action, every stats key, and the controller", async () => {
    const events = new Ledger({ items: ["bd-a1", "bd-b2", "bd-c3"] })
      .start()
      .implement("bd-a1", "opencode", "completed")
      .review("bd-a1", "cc-glm", "APPROVED")
      .implement("bd-b2", "opencode", "blocked")
      .dispatch("bd-c3", "implement", "opencode")
      .jobStarted("bd-c3");
    const sb = sandbox(tmp);
    const state = writeWave(sb, W, events.events);
    const me = await sleeper();
    holdControllerLock(sb, W, me);

    const r = await cli(sb, "status", "--json");
    expect(r.code, r.stderr).toBe(0);
    const doc = parseJson(r.stdout) as {
      items: Record<string, unknown>[];
      stats: Record<string, number>;
      controller: Record<string, unknown>;
      [k: string]: unknown;
    };
    for (const k of [
      "wave_id",
      "status",
      "reason_code",
      "next_action",
      "config",
      "created_at",
      "updated_at",
      "started_at",
      "completed_at",
      "stats",
      "error",
      "items",
      "controller",
    ]) {
      expect(doc, k).toHaveProperty(k);
    }
    expect(doc).toMatchObject({ wave_id: W, status: "running", reason_code: "wave_running", next_action: "monitor_wave_until_terminal" });
    expect(Object.keys(doc.stats).sort()).toEqual(["total", ...ITEM_STATUSES].sort());
    expect(doc.stats).toEqual({ total: 3, pending: 0, implementing: 1, reviewing: 0, approved: 1, revision_required: 0, blocked: 1, failed: 0, cancelled: 0 });
    expect(doc.controller).toMatchObject({ pid: me.pid, alive: true, host: expect.any(String), heartbeat_at: expect.any(String) });

    expect(doc.items.map((i) => [i.beads_id, i.status, i.reason_code, i.next_action])).toEqual([
      ["bd-a1", "approved", "approved", "review_and_close_item"],
      ["bd-b2", "blocked", "implement_reported_blocked", expect.any(String)],
      ["bd-c3", "implementing", "implementing", "wait_for_wave"],
    ]);
    const seedItemFields = [
      "beads_id",
      "status",
      "attempt",
      "provider",
      "run_instance",
      "lease_key",
      "phase",
      "started_at",
      "completed_at",
      "verdict",
      "outcome_path",
      "error",
      "reason_code",
    ];
    for (const it of doc.items) for (const k of seedItemFields) expect(it, `item field ${k}`).toHaveProperty(k);
    const c3 = doc.items[2];
    const s3 = state.items[2];
    expect(c3).toMatchObject({ attempt: 1, provider: "opencode", phase: "implement", run_instance: s3?.run_instance, lease_key: s3?.lease_key });
  });

  it("names a dead controller: status running, reason controller_dead, next run_dx_batch_resume", async () => {
    const sb = await wave(running(), "dead");
    const r = await cli(sb, "status", "--json");
    expect(r.code).toBe(0);
    const doc = parseJson(r.stdout) as Record<string, unknown>;
    expect(doc).toMatchObject({
      status: "running",
      reason_code: "controller_dead",
      next_action: "run_dx_batch_resume",
      controller: { alive: false, pid: expect.any(Number) },
    });

    const h = await cli(sb, "status");
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/controller: pid \d+ on .+ \(dead\)/);
    expect(h.stdout).toContain("controller_dead");
  });

  it("a missing wave: exit 1 with wave_not_found, and --json prints one document too", async () => {
    const sb = sandbox(tmp);
    const j = await cli(sb, "status", "--json");
    expect(parseJson(j.stdout)).toMatchObject({ wave_id: W, reason_code: "wave_not_found" });
    expectRefusal(j, "wave_not_found");
    expectRefusal(await cli(sb, "status"), "wave_not_found");
  });
});
