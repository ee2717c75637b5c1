import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { processStartTime } from "../../src/store/proc.js";
import { readLease } from "../../src/store/lease.js";
import { cleanupAll, E2E, E2E_TIMEOUT_MS, listDir } from "../helpers/world.js";
import { dispatches, duplicateDispatches, duplicateRuns } from "../helpers/checks.js";
import { waitFor } from "../helpers/wait.js";
import { pidAlive } from "../helpers/procs.js";
import { foreignCli, killForeign, signal } from "./foreign.js";

// Issue 9, cross-host: a controller that died on another host leaves leases a resume takes at
// once (they belong to the wave and its epoch, not to a pid), and `cancel` never signals a pid
// recorded by another host: it leaves a cancel request the remote controller honours.

afterEach(async () => {
  killForeign();
  await cleanupAll();
});

const FOREIGN = "dx-host-a";
const env = { DX_BATCH_HEARTBEAT_STALE_MS: "1500" };

describe("another host's controller", { timeout: E2E_TIMEOUT_MS }, () => {
  it("died holding leases: resume takes them over and dispatches at once, with no TTL wait", async () => {
    const items = ["ch-1", "ch-2"];
    const w = new E2E({ items, scenario: { default: { implement: { sleep_ms: 1500 } } }, config: { max_parallel: 2, lease_ttl_minutes: 120 }, env });
    const first = foreignCli(w, FOREIGN, "start", ["--items", items.join(","), "--wave-id", "w-ch"], env);
    await waitFor(async () => (await w.events("w-ch")).filter((e) => e.event === "job_started").length === 2, "both jobs started");
    signal(first.pid, "SIGKILL");
    await first.done;
    // The leases name the dead controller on the other host; their TTL is two hours away.
    const leases = listDir(w.layout.leasesDir("w-ch")).filter((f) => f.endsWith(".lock"));
    expect(leases.length).toBe(2);
    for (const f of leases) {
      const l = readLease(path.join(w.layout.leasesDir("w-ch"), f));
      expect(l.kind === "ok" && l.holder.host).toBe(FOREIGN);
    }
    await new Promise((r) => setTimeout(r, 2_000)); // its heartbeat goes stale
    const t0 = Date.now();
    const r = await w.expectExit("resume", ["--wave-id", "w-ch"], 0);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(r.stderr).not.toContain("will retry");
    const events = await w.events("w-ch");
    expect(events.find((e) => e.event === "controller_acquired")).toMatchObject({ epoch: 2 });
    // The reviews (same item+attempt lease as the dead controller's implement) were dispatched.
    expect(
      dispatches(events)
        .filter((d) => d.phase === "review")
        .map((d) => d.item_id)
        .sort(),
    ).toEqual(items);
    expect(duplicateDispatches(events)).toEqual([]);
    expect(duplicateRuns(w.runs(), "w-ch")).toEqual([]);
    expect(listDir(w.layout.leasesDir("w-ch")).filter((f) => f.endsWith(".lock"))).toEqual([]);
    expect((await w.check("w-ch")).json).toMatchObject({ state: "completed" });
  });

  it("alive: cancel writes a cancel request (exit 0, cancel_requested) and the remote controller cancels the wave", async () => {
    const items = ["cc-1", "cc-2"];
    const w = new E2E({ items, scenario: { default: { implement: { gate: "never" } } }, config: { max_parallel: 2 }, env });
    const remote = foreignCli(w, FOREIGN, "start", ["--items", items.join(","), "--wave-id", "w-cc"], env);
    await waitFor(async () => (await w.events("w-cc")).filter((e) => e.event === "job_started").length === 2, "both jobs started");
    const r = await w.expectExit("cancel", ["--wave-id", "w-cc", "--json"], 0);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: "cancel_requested", reason_code: "cancel_requested" });
    const end = await remote.done;
    expect(end.stdout).toContain("cancelled");
    expect((await w.check("w-cc")).json).toMatchObject({ state: "cancelled" });
    expect(existsSync(path.join(w.layout.waveDir("w-cc"), "cancel.request"))).toBe(false);
    expect(w.state("w-cc")?.items.every((i) => i.status === "cancelled")).toBe(true);
  });

  it("dead: cancel completes here (cancelled, every item cancelled, claims released), with no request left behind", async () => {
    const items = ["cd-1", "cd-2"];
    const w = new E2E({ items, scenario: { default: { implement: { gate: "never" } } }, config: { max_parallel: 2 }, env });
    const remote = foreignCli(w, FOREIGN, "start", ["--items", items.join(","), "--wave-id", "w-cd"], env);
    await waitFor(async () => (await w.events("w-cd")).filter((e) => e.event === "job_started").length === 2, "both jobs started");
    signal(remote.pid, "SIGKILL");
    await remote.done;
    await new Promise((r) => setTimeout(r, 2_000)); // its heartbeat goes stale
    const r = await w.expectExit("cancel", ["--wave-id", "w-cd", "--json"], 0);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: "cancelled", by: "cancel_command" });
    expect((await w.check("w-cd")).json).toMatchObject({ state: "cancelled" });
    expect(w.state("w-cd")?.items.every((i) => i.status === "cancelled")).toBe(true);
    const events = await w.events("w-cd");
    expect(events.find((e) => e.event === "controller_acquired")).toMatchObject({ epoch: 2 });
    for (const id of items) expect(existsSync(w.layout.claimPath(id))).toBe(false);
    expect(existsSync(path.join(w.layout.waveDir("w-cd"), "cancel.request"))).toBe(false);
  });

  it("never signals a local process named by another host's lock", async () => {
    const w = new E2E({ items: ["cs-1"], scenario: { default: { implement: { gate: "never" } } }, env });
    const remote = foreignCli(w, FOREIGN, "start", ["--items", "cs-1", "--wave-id", "w-cs"], env);
    await w.waitEvent("w-cs", (e) => e.event === "job_started", "the job started");
    // Freeze the remote controller and make its lock name a local bystander by pid (and its real
    // start time, so only the host tells them apart), with a fresh heartbeat.
    signal(remote.pid, "SIGSTOP");
    const bystander = spawn("sleep", ["120"], { stdio: "ignore", detached: true });
    const pid = bystander.pid ?? -1;
    try {
      const now = new Date().toISOString();
      writeFileSync(
        w.layout.controllerLock("w-cs"),
        JSON.stringify({ pid, start_time: processStartTime(pid), host: "some-other-host", started_at: now, heartbeat_at: now, epoch: 1, token: "t" }),
      );
      const r = await w.expectExit("cancel", ["--wave-id", "w-cs"], 0);
      expect(r.stdout + r.stderr).toContain("cancel_requested");
      await new Promise((res) => setTimeout(res, 500));
      expect(pidAlive(pid)).toBe(true); // no SIGUSR1, no SIGKILL
      expect(existsSync(path.join(w.layout.waveDir("w-cs"), "cancel.request"))).toBe(true);
    } finally {
      signal(pid, "SIGKILL");
      signal(remote.pid, "SIGKILL");
      signal(remote.pid, "SIGCONT");
    }
  });
});
