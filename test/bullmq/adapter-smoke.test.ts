import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createBullmqRunner, type QueueRunner } from "../../src/queue/bullmq-runner.js";
import type { JobRef } from "../../src/runner/port.js";
import { Cluster, cleanupClusters, groupAlive, waitFor } from "./cluster.js";

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
    const started = await r.start({
      ...ref,
      item_id: "q-1",
      wave_id: "w1",
      phase: "implement",
      attempt: 1,
      worktree: `${ctl}/wt`,
      prompt_file: prompt,
      contract_file: `${ctl}/contract.json`,
    });
    expect(started.pid).toBe(0);
    await waitFor(() => exits.some((e) => e.run_instance === ref.run_instance), { what: "exit event", timeoutMs: 30_000 });
    const h = await r.check(ref, { stall_minutes: 10, max_runtime_minutes: 10 });
    expect(h.state).toBe("exited_ok");
    const contract = await r.readContract(ref);
    expect(contract.found).toBe(true);
    expect(c.remoteBranches()).toContain("dx/q-1");
    const run = c.runs().find((x) => x.event === "start");
    expect(run?.cwd?.startsWith(w.workspace)).toBe(true);
    // The worker keeps the result on its disk until the controller acknowledges it.
    const spool = path.join(w.runnerDir, "_worker", "spool", `${ref.run_instance}.result.json`);
    expect(existsSync(spool)).toBe(true);
    await r.ack(ref);
    await waitFor(() => !existsSync(spool), { what: "the spooled result to be dropped after the ack", timeoutMs: 10_000 });
  }, 90_000);

  it("SIGTERM drains (no new job, the running one finishes); a second SIGTERM stops the agent", async () => {
    const c = await Cluster.create({
      items: ["dr-1", "dr-2", "dr-3"],
      scenario: { items: { "dr-1": { implement: { gate: "a" } }, "dr-3": { implement: { hang: true } } } },
    });
    const w = c.startWorker("h1", { concurrency: 2 });
    await c.workerReady(w);
    const r = createBullmqRunner({ redis_url: c.redis.url, prefix: c.prefix, base: null, stall_minutes: 10, max_runtime_minutes: 10, lock_ms: c.lockMs });
    runner = r;
    const ctl = path.join(c.root, "ctl");
    mkdirSync(ctl, { recursive: true });
    const prompt = path.join(ctl, "p.prompt");
    writeFileSync(prompt, "work\n");
    const spec = (item: string, run: string) => ({
      job_id: item,
      item_id: item,
      provider: "agent-a",
      run_instance: run,
      wave_id: "w1",
      phase: "implement" as const,
      attempt: 1,
      worktree: `${ctl}/wt`,
      prompt_file: prompt,
      contract_file: `${ctl}/c.json`,
    });
    const opts = { stall_minutes: 10, max_runtime_minutes: 10 };
    await r.start(spec("dr-1", "run-dr-1"));
    await waitFor(() => c.runs().some((x) => x.event === "start" && x.item === "dr-1"), { what: "dr-1 to start" });
    process.kill(w.proc.pid, "SIGTERM");
    await waitFor(() => w.proc.err().includes("draining"), { what: "draining" });
    await r.start(spec("dr-2", "run-dr-2"));
    await new Promise((res) => setTimeout(res, 1_500));
    expect(c.runs().some((x) => x.item === "dr-2")).toBe(false);
    c.gate("a");
    const done = await w.proc.done;
    expect(done.code).toBe(0);
    expect((await r.check({ job_id: "dr-1", provider: "agent-a", run_instance: "run-dr-1" }, opts)).state).toBe("exited_ok");
    expect((await r.check({ job_id: "dr-2", provider: "agent-a", run_instance: "run-dr-2" }, opts)).state).toBe("launching");

    // A new worker picks dr-2 up; then dr-3 hangs and two SIGTERMs stop it.
    const w2 = c.startWorker("h2", { concurrency: 2 });
    await c.workerReady(w2);
    await r.start(spec("dr-3", "run-dr-3"));
    await waitFor(() => c.runs().some((x) => x.event === "start" && x.item === "dr-3"), { what: "dr-3 to start" });
    const agent = c.runs().find((x) => x.event === "start" && x.item === "dr-3");
    process.kill(w2.proc.pid, "SIGTERM");
    await waitFor(() => w2.proc.err().includes("draining"), { what: "draining" });
    process.kill(w2.proc.pid, "SIGTERM");
    const done2 = await w2.proc.done;
    expect(done2.code).toBe(0);
    expect((await r.check({ job_id: "dr-3", provider: "agent-a", run_instance: "run-dr-3" }, opts)).state).toBe("stopped");
    expect(agent?.pgid).toBeTypeOf("number");
    await waitFor(() => !groupAlive(agent?.pgid ?? 0), { what: "the agent's process group to be gone", timeoutMs: 15_000 });
  }, 120_000);
});
