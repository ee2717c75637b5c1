import { afterEach, describe, expect, it } from "vitest";
import { openRedis } from "../../src/queue/redis.js";
import { keys, parseRunRecord } from "../../src/queue/protocol.js";
import { Cluster, cleanupClusters, groupAlive, waitFor, type AgentRun } from "./cluster.js";

// Issue #12, "must show": every worker is its own process with its own clone, workspace and runner
// directory (a host); a local bare repository is the shared remote; Redis is a throw-away
// redis-server. The controller is the real CLI with `runner: {type: "bullmq"}`.

const T = 180_000;
afterEach(cleanupClusters);

type Ev = Record<string, unknown>;
const of = (evs: Ev[], name: string, pred: (e: Ev) => boolean = () => true): Ev[] => evs.filter((e) => e.event === name && pred(e));

function statusOf(c: Cluster, waveId: string): Promise<Record<string, string>> {
  return c.run("status", ["--wave-id", waveId, "--json"]).then((r) => {
    const doc = JSON.parse(r.out) as { items: { beads_id: string; status: string }[] };
    return Object.fromEntries(doc.items.map((i) => [i.beads_id, i.status]));
  });
}

/** One `item_dispatched` per item, phase and attempt, and one agent start per dispatch. */
function expectNothingTwice(c: Cluster, evs: Ev[]): void {
  const seen = new Set<string>();
  for (const e of of(evs, "item_dispatched")) {
    const k = `${String(e.item_id)}/${String(e.phase)}/${String(e.attempt)}`;
    expect(seen.has(k), `dispatched twice: ${k}`).toBe(false);
    seen.add(k);
  }
  const starts = new Map<string, number>();
  for (const r of c.runs().filter((x) => x.event === "start")) {
    const k = `${r.item}/${r.phase}/${r.attempt}`;
    starts.set(k, (starts.get(k) ?? 0) + 1);
  }
  for (const [k, n] of starts) expect(n, `agent started ${n} times for ${k}`).toBe(1);
}

const startsOf = (c: Cluster, pred: (r: AgentRun) => boolean = () => true): AgentRun[] => c.runs().filter((r) => r.event === "start" && pred(r));

describe("many hosts: dx-batch worker on BullMQ", () => {
  it(
    "two workers, one wave: every item approved, branches on the shared remote, both workers used",
    async () => {
      const items = ["mh-1", "mh-2", "mh-3", "mh-4", "mh-5", "mh-6"];
      const c = await Cluster.create({ items, scenario: { default: { implement: { sleep_ms: 400 }, review: { sleep_ms: 200 } } } });
      const [h1, h2] = [c.startWorker("h1"), c.startWorker("h2")];
      await Promise.all([c.workerReady(h1), c.workerReady(h2)]);
      const r = await c.run("start", ["--items", items.join(","), "--wave-id", "w-two"]);
      expect(r.code, r.err).toBe(0);
      expect(Object.values(await statusOf(c, "w-two"))).toEqual(items.map(() => "approved"));
      for (const id of items) expect(c.remoteBranches()).toContain(`dx/${id}`);
      const hosts = new Set(startsOf(c).map((s) => c.hostOf(s)));
      expect(hosts).toEqual(new Set(["h1", "h2"]));
      expectNothingTwice(c, c.ledger("w-two"));
      // The full logs stay on the worker hosts: each attempt's log path names its host.
      const finished = of(c.ledger("w-two"), "job_finished");
      expect(finished).toHaveLength(12);
      for (const e of finished) expect(String(e.log_path)).toMatch(/^h[12]:\//);
      // Reviews ran on the pushed history: every review's worktree has the implement commit.
      const ws = await c.run("workers", ["--json"]);
      expect((JSON.parse(ws.out) as { workers: unknown[] }).workers).toHaveLength(2);
    },
    T,
  );

  it(
    "a worker and its agents SIGKILLed mid-job: runner_job_lost within the lock window, retried on the other worker",
    async () => {
      const c = await Cluster.create({ items: ["kl-1"], scenario: { items: { "kl-1": { implement: [{ hang: true }, { sleep_ms: 200 }] } } } });
      const h1 = c.startWorker("h1");
      await c.workerReady(h1);
      const ctl = c.cli(["start", "--config", c.configPath, "--items", "kl-1", "--wave-id", "w-kill"]);
      const first = await waitFor(() => startsOf(c, (s) => s.attempt === 1)[0], { what: "attempt 1 to start on h1", timeoutMs: 60_000 });
      expect(c.hostOf(first)).toBe("h1");
      const h2 = c.startWorker("h2");
      await c.workerReady(h2);
      const killedAt = Date.now();
      process.kill(-h1.proc.pid, "SIGKILL");
      if (first.pgid !== null) process.kill(-first.pgid, "SIGKILL");
      const lost = await waitFor(() => of(c.ledger("w-kill"), "attempt_failed", (e) => e.reason_code === "runner_job_lost")[0], {
        what: "runner_job_lost",
        timeoutMs: 60_000,
      });
      const lostAfter = Date.now() - killedAt;
      process.stdout.write(`runner_job_lost recorded ${lostAfter} ms after the SIGKILL (lock window ${c.lockMs} ms)\n`);
      // Lock window + the stalled check (half a window) + polling.
      expect(lostAfter).toBeLessThan(c.lockMs * 2 + 2_000);
      expect(lost.attempt).toBe(1);
      const r = await ctl.done;
      expect(r.code, ctl.err()).toBe(0);
      expect((await statusOf(c, "w-kill"))["kl-1"]).toBe("approved");
      const second = startsOf(c, (s) => s.attempt === 2 && s.phase === "implement")[0];
      expect(second && c.hostOf(second)).toBe("h2");
      expectNothingTwice(c, c.ledger("w-kill"));
    },
    T,
  );

  it(
    "a worker SIGSTOPped past its lock window: its agent is stopped when it wakes, its late result refused, the job runs once more elsewhere",
    async () => {
      const c = await Cluster.create({ items: ["st-1"], scenario: { items: { "st-1": { implement: [{ hang: true }, { sleep_ms: 200 }] } } } });
      const h1 = c.startWorker("h1");
      await c.workerReady(h1);
      const ctl = c.cli(["start", "--config", c.configPath, "--items", "st-1", "--wave-id", "w-stop"]);
      const first = await waitFor(() => startsOf(c, (s) => s.attempt === 1)[0], { what: "attempt 1 on h1", timeoutMs: 60_000 });
      const h2 = c.startWorker("h2");
      await c.workerReady(h2);
      process.kill(h1.proc.pid, "SIGSTOP");
      const lost = await waitFor(() => of(c.ledger("w-stop"), "attempt_failed", (e) => e.reason_code === "runner_job_lost")[0], {
        what: "runner_job_lost",
        timeoutMs: 60_000,
      });
      const staleRun = String(lost.run_instance);
      await waitFor(() => startsOf(c, (s) => s.attempt === 2)[0], { what: "attempt 2 elsewhere", timeoutMs: 60_000 });
      // The frozen worker's agent kept running meanwhile; waking, the worker stops it at once.
      expect(first.pgid !== null && groupAlive(first.pgid)).toBe(true);
      process.kill(h1.proc.pid, "SIGCONT");
      await waitFor(() => first.pgid !== null && !groupAlive(first.pgid), { what: "the stale agent to be stopped", timeoutMs: 20_000 });
      expect(h1.proc.err()).toContain("lock not renewed");
      // Its late result reaches Redis marked lock_lost, and the ledger never takes it.
      const redis = openRedis(c.redis.url);
      try {
        const rec = await waitFor(
          async () => {
            const r = parseRunRecord(await redis.hgetall(keys(c.prefix).run(staleRun)));
            return r?.result ? r : null;
          },
          { what: "the stale result", timeoutMs: 20_000 },
        );
        expect(rec.result?.lock_lost).toBe(true);
      } finally {
        redis.disconnect();
      }
      const r = await ctl.done;
      expect(r.code, ctl.err()).toBe(0);
      const evs = c.ledger("w-stop");
      expect(of(evs, "job_finished", (e) => e.run_instance === staleRun)).toHaveLength(0);
      expect((await statusOf(c, "w-stop"))["st-1"]).toBe("approved");
      const second = startsOf(c, (s) => s.attempt === 2 && s.phase === "implement");
      expect(second).toHaveLength(1);
      expect(c.hostOf(second[0] as AgentRun)).toBe("h2");
    },
    T,
  );

  it(
    "Redis restarted mid-wave (appendonly yes): the wave completes and no result is lost",
    async () => {
      const items = ["rr-1", "rr-2", "rr-3", "rr-4"];
      const c = await Cluster.create({
        items,
        appendonly: true,
        // The outage (kill, 1.5 s down, restart, reconnect) must fit the lock window with room to
        // spare on a loaded CI box; a lost lock stops the agent by design and costs an attempt.
        lockMs: 12_000,
        scenario: { default: { implement: { sleep_ms: 2_500 }, review: { sleep_ms: 300 } } },
      });
      const [h1, h2] = [c.startWorker("h1"), c.startWorker("h2")];
      await Promise.all([c.workerReady(h1), c.workerReady(h2)]);
      const ctl = c.cli(["start", "--config", c.configPath, "--items", items.join(","), "--wave-id", "w-redis"]);
      await waitFor(() => startsOf(c).length >= 3, { what: "agents running", timeoutMs: 60_000 });
      await c.redis.restart({ signal: "SIGKILL", downMs: 1_500 });
      const r = await ctl.done;
      expect(r.code, ctl.err()).toBe(0);
      const evs = c.ledger("w-redis");
      expect(of(evs, "attempt_failed"), JSON.stringify(of(evs, "attempt_failed"))).toHaveLength(0);
      expect(Object.values(await statusOf(c, "w-redis"))).toEqual(items.map(() => "approved"));
      expectNothingTwice(c, evs);
    },
    T,
  );

  it(
    "the controller SIGKILLed and resumed: remote jobs are re-attached, not redone",
    async () => {
      const items = ["cr-1", "cr-2", "cr-3"];
      const c = await Cluster.create({ items, scenario: { default: { implement: { gate: "go" }, review: { sleep_ms: 100 } } } });
      const [h1, h2] = [c.startWorker("h1"), c.startWorker("h2")];
      await Promise.all([c.workerReady(h1), c.workerReady(h2)]);
      const ctl = c.cli(["start", "--config", c.configPath, "--items", items.join(","), "--wave-id", "w-crash"]);
      await waitFor(() => of(c.ledger("w-crash"), "job_started").length === 3, { what: "3 jobs started", timeoutMs: 60_000 });
      process.kill(-ctl.pid, "SIGKILL");
      await ctl.done;
      c.gate("go");
      const r = await c.run("resume", ["--wave-id", "w-crash"]);
      expect(r.code, r.err).toBe(0);
      const evs = c.ledger("w-crash");
      expect(of(evs, "item_dispatched", (e) => e.phase === "implement")).toHaveLength(3);
      expect(of(evs, "attempt_failed")).toHaveLength(0);
      expect(startsOf(c, (s) => s.phase === "implement")).toHaveLength(3);
      expect(Object.values(await statusOf(c, "w-crash"))).toEqual(items.map(() => "approved"));
      expectNothingTwice(c, evs);
    },
    T,
  );

  it(
    "cancel: every remote agent stops",
    async () => {
      const items = ["cx-1", "cx-2", "cx-3"];
      const c = await Cluster.create({ items, scenario: { default: { implement: { hang: true } } } });
      const [h1, h2] = [c.startWorker("h1"), c.startWorker("h2")];
      await Promise.all([c.workerReady(h1), c.workerReady(h2)]);
      const ctl = c.cli(["start", "--config", c.configPath, "--items", items.join(","), "--wave-id", "w-cancel"]);
      await waitFor(() => startsOf(c).length === 3, { what: "3 agents", timeoutMs: 60_000 });
      const r = await c.run("cancel", ["--wave-id", "w-cancel"]);
      expect(r.code, r.err).toBe(0);
      await ctl.done;
      await waitFor(() => startsOf(c).every((s) => s.pgid === null || !groupAlive(s.pgid)), { what: "every agent gone", timeoutMs: 30_000 });
      expect(of(c.ledger("w-cancel"), "wave_cancelled")).toHaveLength(1);
    },
    T,
  );

  it(
    "a provider only one worker offers: its jobs run only there",
    async () => {
      const items = ["po-1", "po-2", "po-3", "po-4"];
      const c = await Cluster.create({
        items,
        providers: ["agent-a", "agent-b"],
        config: { retry_chain: ["agent-b", "agent-b", "blocked"], review_provider: "agent-a" },
        scenario: { default: { implement: { sleep_ms: 300 }, review: { sleep_ms: 100 } } },
      });
      const h1 = c.startWorker("h1", { providers: ["agent-a", "agent-b"] });
      const h2 = c.startWorker("h2", { providers: ["agent-a"] });
      await Promise.all([c.workerReady(h1), c.workerReady(h2)]);
      const r = await c.run("start", ["--items", items.join(","), "--wave-id", "w-only"]);
      expect(r.code, r.err).toBe(0);
      const b = startsOf(c, (s) => s.provider === "agent-b");
      // One start per item, plus one per failed attempt (on a loaded box a lost lock re-runs a job:
      // by design, and recorded).
      const failed = of(c.ledger("w-only"), "attempt_failed", (e) => e.provider === "agent-b");
      expect(b.length, JSON.stringify(failed)).toBe(4 + failed.length);
      for (const s of b) expect(c.hostOf(s)).toBe("h1");
      expect(Object.values(await statusOf(c, "w-only"))).toEqual(items.map(() => "approved"));
    },
    T,
  );

  it(
    "Redis down past runner.unavailable_minutes: the wave pauses queue_unavailable; resume completes it",
    async () => {
      const items = ["qu-1", "qu-2"];
      const c = await Cluster.create({
        items,
        appendonly: true,
        runner: { unavailable_minutes: 0.05 },
        scenario: { default: { implement: { gate: "go" }, review: { sleep_ms: 100 } } },
      });
      const h1 = c.startWorker("h1");
      await c.workerReady(h1);
      const ctl = c.cli(["start", "--config", c.configPath, "--items", items.join(","), "--wave-id", "w-down"]);
      await waitFor(() => startsOf(c).length === 2, { what: "2 agents", timeoutMs: 60_000 });
      await c.redis.kill("SIGKILL");
      const r = await ctl.done;
      expect(r.code, ctl.err()).toBe(2);
      expect(of(c.ledger("w-down"), "wave_paused", (e) => e.reason_code === "queue_unavailable")).toHaveLength(1);
      await c.redis.start();
      // The worker announces itself again once it has reconnected (its next heartbeat); resume's
      // preflight asks for a live worker, as a user's would.
      await waitFor(async () => (await c.run("workers", ["--json"])).out.includes(`"h1`), { what: "h1 registered again", timeoutMs: 30_000 });
      c.gate("go");
      const again = await c.run("resume", ["--wave-id", "w-down"]);
      expect(again.code, again.err).toBe(0);
      expect(Object.values(await statusOf(c, "w-down"))).toEqual(items.map(() => "approved"));
      expectNothingTwice(c, c.ledger("w-down"));
    },
    T,
  );
});
