import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createBullmqRunner, type QueueRunner } from "../../src/queue/bullmq-runner.js";
import type { JobRef } from "../../src/runner/port.js";
import { Cluster, cleanupClusters, waitFor } from "./cluster.js";

// The controller's queue runner against one real worker process: enqueue, exit event, result,
// contract, the branch pushed to the shared remote; and a provider nobody offers.

let runner: QueueRunner | null = null;
afterEach(async () => {
  await runner?.close();
  runner = null;
  await cleanupClusters();
});

describe("queue runner and one worker", () => {
  it("runs an implement job on the worker and pushes dx/<item>", async () => {
    const c = await Cluster.create({ items: ["q-1"], scenario: { default: { implement: { sleep_ms: 300 } } } });
    const w = c.startWorker("h1");
    await c.workerReady(w);
    const r = createBullmqRunner({ redis_url: c.redis.url, prefix: c.prefix, base: null, stall_minutes: 10, max_runtime_minutes: 10, lock_ms: c.lockMs });
    runner = r;
    expect((await r.preflight("agent-a")).ok).toBe(true);
    expect(await r.preflight("nobody")).toMatchObject({ ok: false, reason_code: "no_live_worker" });

    const ctl = path.join(c.root, "ctl");
    mkdirSync(ctl, { recursive: true });
    const prompt = path.join(ctl, "q-1.prompt");
    writeFileSync(prompt, `work in ${ctl}/wt and write ${ctl}/contract.json\n`);
    const exits: JobRef[] = [];
    r.onExit((ref) => exits.push(ref));
    const ref: JobRef = { job_id: "q-1", provider: "agent-a", run_instance: "run-aaa-1" };
    const started = await r.start({ ...ref, item_id: "q-1", wave_id: "w1", phase: "implement", attempt: 1, worktree: `${ctl}/wt`, prompt_file: prompt, contract_file: `${ctl}/contract.json` });
    expect(started.pid).toBe(0);
    await waitFor(() => exits.some((e) => e.run_instance === ref.run_instance), { what: "exit event", timeoutMs: 30_000 });
    const h = await r.check(ref, { stall_minutes: 10, max_runtime_minutes: 10 });
    expect(h.state).toBe("exited_ok");
    const contract = await r.readContract(ref);
    expect(contract.found).toBe(true);
    expect(c.remoteBranches()).toContain("dx/q-1");
    const run = c.runs().find((x) => x.event === "start");
    expect(run?.cwd?.startsWith(w.workspace)).toBe(true);
    await r.ack(ref);
  }, 90_000);
});
