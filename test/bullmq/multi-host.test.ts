import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openRedis } from "../../src/queue/redis.js";
import { keys, parseRunRecord, type WorkerRecord } from "../../src/queue/protocol.js";
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

const gitIn = (cwd: string, ...args: string[]): string => execFileSync("git", args, { cwd, encoding: "utf8" }).trim();

/** The most agents alive at once, from their own start and end records (a lower bound of the jobs at once). */
function maxOverlap(c: Cluster): number {
  const edges: [number, number][] = [];
  for (const r of c.runs() as (AgentRun & { at?: string })[]) {
    if (r.event === "start") edges.push([Date.parse(String(r.at)), 1]);
    else if (r.event === "end") edges.push([Date.parse(String(r.at)), -1]);
  }
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let max = 0;
  for (const [, d] of edges) max = Math.max(max, (now += d));
  return max;
}

/** How each attempt of a wave ended, for a failure message. */
const outcomes = (evs: Ev[]): string =>
  evs
    .filter((e) => ["job_finished", "attempt_failed", "item_settled", "wave_completed", "wave_failed"].includes(String(e.event)))
    .map((e) =>
      JSON.stringify({
        event: e.event,
        phase: e.phase,
        attempt: e.attempt,
        state: e.state,
        reason_code: e.reason_code,
        error: e.error,
        cli_error: e.cli_error,
        contract_error: e.contract_error,
      }),
    )
    .join("\n");
const startsOf = (c: Cluster, pred: (r: AgentRun) => boolean = () => true): AgentRun[] => c.runs().filter((r) => r.event === "start" && pred(r));

describe("many hosts: dx-batch worker on BullMQ", () => {
  it(
    "two workers, one wave: every item approved, branches on the shared remote, both workers used",
    async () => {
      const items = ["mh-1", "mh-2", "mh-3", "mh-4", "mh-5", "mh-6"];
      // No queue_prefix anywhere: controller and workers meet on the default, dxb.
      const c = await Cluster.create({ items, defaultPrefix: true, scenario: { default: { implement: { sleep_ms: 400 }, review: { sleep_ms: 200 } } } });
      // 6 slots on the workers, max_parallel 4 in the controller's config: the cap is the wave's.
      const [h1, h2] = [c.startWorker("h1", { concurrency: 3 }), c.startWorker("h2", { concurrency: 3 })];
      await Promise.all([c.workerReady(h1), c.workerReady(h2)]);
      const r = await c.run("start", ["--items", items.join(","), "--wave-id", "w-two"]);
      expect(r.code, r.err).toBe(0);
      expect(Object.values(await statusOf(c, "w-two"))).toEqual(items.map(() => "approved"));
      for (const id of items) expect(c.remoteBranches()).toContain(`dx/${id}`);
      const hosts = new Set(startsOf(c).map((s) => c.hostOf(s)));
      expect(hosts).toEqual(new Set(["h1", "h2"]));
      expectNothingTwice(c, c.ledger("w-two"));
      expect(maxOverlap(c)).toBeLessThanOrEqual(4);
      // The controller made no worktree (and has no repo: its cwd is not a git checkout).
      expect(existsSync(path.join(c.root, "controller-ws"))).toBe(false);
      // Every review ran in a worktree at the pushed dx/<item>, holding the implement's commit.
      for (const rv of startsOf(c, (s) => s.phase === "review")) {
        const cwd = String(rv.cwd);
        expect(gitIn(cwd, "rev-parse", "HEAD")).toBe(gitIn(c.remote, "rev-parse", `dx/${rv.item}`));
        expect(existsSync(path.join(cwd, "notes", `${rv.item}.md`))).toBe(true);
        // Its prompt shows the item's change: the worker diffed the pushed branch from its base.
        const prompt = readFileSync(path.join(c.recordDir, "prompts", `${rv.item}.review.attempt${rv.attempt}.${rv.provider}.txt`), "utf8");
        expect(prompt).toContain(`notes/${rv.item}.md | 1 +`);
        expect(prompt).toContain(`diff --git a/notes/${rv.item}.md b/notes/${rv.item}.md`);
        expect(prompt).toMatch(/The item's whole change is [0-9a-f]{40}\.\.[0-9a-f]{40} in the git worktree /);
        expect(prompt).not.toContain("[[dx-batch:worker:");
        expect(prompt).not.toContain("(not available");
      }
      // The full logs stay on the worker hosts: each attempt's log path names its host, the last
      // 64 KB come back with the result, and `report` shows where the rest is.
      const finished = of(c.ledger("w-two"), "job_finished");
      expect(finished).toHaveLength(12);
      const report = await c.run("report", ["--wave-id", "w-two", "--format", "markdown"]);
      expect(report.code, report.err).toBe(0);
      const redis = openRedis(c.redis.url);
      try {
        expect((await redis.keys("dxb:agent-a:*")).length).toBeGreaterThan(0);
        for (const e of finished) {
          const logPath = String(e.log_path);
          expect(logPath).toMatch(/^h[12]:\//);
          expect(report.out).toContain(logPath);
          const rec = parseRunRecord(await redis.hgetall(keys("dxb").run(String(e.run_instance))));
          const result = rec?.result;
          expect(result?.host).toBe(logPath.slice(0, 2));
          expect(`${result?.host}:${result?.log_path}`).toBe(logPath);
          expect(result?.log_tail.length).toBeGreaterThan(0);
          expect(readFileSync(String(result?.log_path), "utf8").endsWith(String(result?.log_tail))).toBe(true);
        }
      } finally {
        redis.disconnect();
      }
      const ws = await c.run("workers", ["--json"]);
      expect((JSON.parse(ws.out) as { prefix: string; workers: unknown[] }).prefix).toBe("dxb");
      expect((JSON.parse(ws.out) as { workers: unknown[] }).workers).toHaveLength(2);
    },
    T,
  );

  it(
    "a worker and its agents SIGKILLed mid-job: runner_job_lost within the lock window, retried on the other worker",
    async () => {
      // A short window: this test waits for it to run out.
      const c = await Cluster.create({ items: ["kl-1"], lockMs: 5_000, scenario: { items: { "kl-1": { implement: [{ hang: true }, { sleep_ms: 200 }] } } } });
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
      expect(r.code, `${ctl.err()}\n${outcomes(c.ledger("w-kill"))}`).toBe(0);
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
      // A short window: this test waits for it to run out.
      const c = await Cluster.create({ items: ["st-1"], lockMs: 5_000, scenario: { items: { "st-1": { implement: [{ hang: true }, { sleep_ms: 200 }] } } } });
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
      // The worker logs before it stops the agent, but this process may see the agent gone before
      // it has read that line from the pipe: wait for the line too.
      await waitFor(() => h1.proc.err().includes("lock not renewed"), { what: "the worker to log the lost lock", timeoutMs: 10_000 });
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
      expect(
        of(evs, "item_dispatched", (e) => e.phase === "implement"),
        outcomes(evs) + "\n" + r.err,
      ).toHaveLength(3);
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
      // `dx-batch workers` lists each live worker with its providers and the jobs it runs.
      const listed = await waitFor(
        async () => {
          const ws = (JSON.parse((await c.run("workers", ["--json"])).out) as { workers: WorkerRecord[] }).workers;
          return ws.flatMap((w) => w.jobs).length === 3 ? ws : null;
        },
        { what: "the 3 jobs listed by dx-batch workers", timeoutMs: 30_000 },
      );
      expect(listed.map((w) => w.host).sort()).toEqual(["h1", "h2"]);
      for (const w of listed) expect(w.providers).toEqual(["agent-a"]);
      expect(listed.flatMap((w) => w.jobs.map((j) => j.job_id)).sort()).toEqual(items);
      const text = await c.run("workers");
      for (const id of items) expect(text.out).toContain(id);
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
      // Every agent-b job the controller dispatched started exactly once, and no other did. Usually
      // that is one per item; on a loaded box an attempt can fail (a lost lock, a slow agent) and the
      // item is dispatched again under a new run_instance: by design, and recorded.
      const dispatched = of(c.ledger("w-only"), "item_dispatched", (e) => e.provider === "agent-b").map((e) => e.run_instance as string);
      expect(dispatched.length).toBeGreaterThanOrEqual(4);
      expect(b.map((s) => s.run_instance).sort(), JSON.stringify(c.ledger("w-only").filter((e) => e.provider === "agent-b"))).toEqual([...dispatched].sort());
      for (const s of b) expect(c.hostOf(s)).toBe("h1");
      expect(Object.values(await statusOf(c, "w-only"))).toEqual(items.map(() => "approved"));
    },
    T,
  );

  it(
    "across hosts: a provider failing preflight on a host is not consumed there; a review and a retry on another host continue from the pushed dx/<item>",
    async () => {
      const items = ["xh-1", "xh-2"];
      const c = await Cluster.create({
        items,
        providers: ["agent-a", "agent-b"],
        // Implements start on agent-b (h1 only), reviews and the second implement attempt run on agent-a (h2 only).
        config: { retry_chain: ["agent-b", "agent-a", "blocked"], review_provider: "agent-a" },
        scenario: {
          default: { implement: { sleep_ms: 200 }, review: { sleep_ms: 100 } },
          items: { "xh-1": { review: [{ verdict: "REVISION_REQUIRED" }, { verdict: "APPROVED" }] } },
        },
      });
      const h1 = c.startWorker("h1", { providers: ["agent-b"] });
      // h2 is asked for both, but agent-b is not "logged in" on h2: its preflight fails there.
      const h2 = c.startWorker("h2", { providers: ["agent-a", "agent-b"], failPreflight: ["agent-b"] });
      await Promise.all([c.workerReady(h1), c.workerReady(h2)]);
      expect(h2.proc.err()).toContain("provider agent-b unavailable on this host");
      const ws = JSON.parse((await c.run("workers", ["--json"])).out) as { workers: WorkerRecord[] };
      const byHost = Object.fromEntries(ws.workers.map((w) => [w.host, w]));
      expect(byHost.h1?.providers).toEqual(["agent-b"]);
      expect(byHost.h2?.providers).toEqual(["agent-a"]);
      expect(byHost.h2?.unavailable.map((u) => u.provider)).toEqual(["agent-b"]);

      const r = await c.run("start", ["--items", items.join(","), "--wave-id", "w-xhost"]);
      expect(r.code, r.err).toBe(0);
      expect(Object.values(await statusOf(c, "w-xhost"))).toEqual(items.map(() => "approved"));
      for (const s of startsOf(c)) expect(c.hostOf(s)).toBe(s.provider === "agent-b" ? "h1" : "h2");
      // xh-2 was implemented on h1 only: h2's review worktree was made from the pushed branch.
      const review2 = startsOf(c, (s) => s.item === "xh-2" && s.phase === "review");
      expect(review2).toHaveLength(1);
      const cwd2 = String(review2[0]?.cwd);
      expect(gitIn(cwd2, "rev-parse", "HEAD")).toBe(gitIn(c.remote, "rev-parse", "dx/xh-2"));
      expect(readFileSync(path.join(cwd2, "notes", "xh-2.md"), "utf8")).toContain("xh-2 attempt 1 by agent-b");
      // xh-1's second attempt ran on h2 and continued from h1's pushed attempt 1.
      const second = startsOf(c, (s) => s.item === "xh-1" && s.phase === "implement" && s.attempt === 2);
      expect(second.map((s) => c.hostOf(s))).toEqual(["h2"]);
      const notes = gitIn(c.remote, "show", "dx/xh-1:notes/xh-1.md");
      expect(notes).toContain("xh-1 attempt 1 by agent-b");
      expect(notes).toContain("xh-1 attempt 2 by agent-a");
      expectNothingTwice(c, c.ledger("w-xhost"));
    },
    T,
  );

  it(
    "post-implement git on the worker reaches the ledger: its auto-commit is recorded, and an attempt that changed nothing fails no_changes",
    async () => {
      const c = await Cluster.create({
        items: ["ac-1", "nc-1"],
        scenario: {
          default: { review: { sleep_ms: 100 } },
          items: { "ac-1": { implement: { commit: false } }, "nc-1": { implement: [{ edit: false }, {}] } },
        },
      });
      const h1 = c.startWorker("h1");
      await c.workerReady(h1);
      const r = await c.run("start", ["--items", "ac-1,nc-1", "--wave-id", "w-git"]);
      expect(r.code, r.err).toBe(0);
      const evs = c.ledger("w-git");
      // ac-1's agent left its edit uncommitted: the worker committed and pushed it, the ledger says so.
      const auto = of(evs, "auto_commit", (e) => e.item_id === "ac-1");
      expect(auto).toHaveLength(1);
      expect(auto[0]?.files).toEqual(["notes/ac-1.md"]);
      expect(auto[0]?.sha).toBe(gitIn(c.remote, "rev-parse", "dx/ac-1"));
      expect(gitIn(c.remote, "log", "-1", "--format=%B", "dx/ac-1")).toContain("Dx-Batch-Attempt: 1");
      const fin = of(evs, "job_finished", (e) => e.item_id === "ac-1" && e.phase === "implement")[0];
      expect(fin?.range).toEqual({ from: gitIn(c.remote, "rev-parse", "main"), to: auto[0]?.sha });
      // nc-1's first attempt said "completed" and changed nothing: no_changes, as on one host.
      const rep = JSON.parse((await c.run("report", ["--wave-id", "w-git", "--format", "json"])).out) as {
        items: { beads_id: string; attempts: { phase: string; attempt: number; reason_code: string; auto_commit: string | null }[] }[];
      };
      const nc = rep.items.find((i) => i.beads_id === "nc-1")?.attempts.filter((a) => a.phase === "implement") ?? [];
      expect(nc.map((a) => [a.attempt, a.reason_code])).toEqual([
        [1, "no_changes"],
        [2, "implement_completed_pending_review"],
      ]);
      const ac = rep.items.find((i) => i.beads_id === "ac-1")?.attempts.find((a) => a.phase === "implement");
      expect(ac?.auto_commit).toBe(auto[0]?.sha);
      expect(await statusOf(c, "w-git")).toEqual({ "ac-1": "approved", "nc-1": "approved" });
    },
    T,
  );

  it(
    "each worker's exec cap is its own: a host at its exec_process_cap takes no more jobs, whatever its --concurrency",
    async () => {
      const items = ["ec-1", "ec-2", "ec-3"];
      const c = await Cluster.create({ items, scenario: { default: { implement: { sleep_ms: 600 }, review: { sleep_ms: 100 } } } });
      const h1 = c.startWorker("h1", { concurrency: 3, config: { exec_process_cap: 1 } });
      await c.workerReady(h1);
      const r = await c.run("start", ["--items", items.join(","), "--wave-id", "w-cap"]);
      expect(r.code, r.err).toBe(0);
      expect(Object.values(await statusOf(c, "w-cap"))).toEqual(items.map(() => "approved"));
      expect(startsOf(c)).toHaveLength(6);
      expect(maxOverlap(c)).toBe(1);
    },
    T,
  );

  it(
    "Redis down past runner.unavailable_minutes and the lock window: the wave pauses queue_unavailable, the worker stops its agents, resume completes it",
    async () => {
      const items = ["qu-1", "qu-2"];
      const c = await Cluster.create({
        items,
        // A short window: this test waits for it to run out while Redis is down.
        lockMs: 5_000,
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
      // Still no Redis: the worker cannot renew its locks, so it stops its agents at once (someone
      // else may be running these attempts now).
      const agents = startsOf(c);
      await waitFor(() => agents.every((s) => s.pgid !== null && !groupAlive(s.pgid)), {
        what: "the worker to stop its agents while Redis is down",
        timeoutMs: c.lockMs * 3,
      });
      // The worker logs before it stops the agent, but this process may see the agent gone before
      // it has read that line from the pipe: wait for the line too.
      await waitFor(() => h1.proc.err().includes("lock not renewed"), { what: "the worker to log the lost lock", timeoutMs: 10_000 });
      await c.redis.start();
      // The worker announces itself again once it has reconnected (its next heartbeat); resume's
      // preflight asks for a live worker, as a user's would.
      await waitFor(async () => (await c.run("workers", ["--json"])).out.includes(`"h1`), { what: "h1 registered again", timeoutMs: 30_000 });
      c.gate("go");
      const again = await c.run("resume", ["--wave-id", "w-down"]);
      expect(again.code, again.err).toBe(0);
      expect(Object.values(await statusOf(c, "w-down"))).toEqual(items.map(() => "approved"));
      // The stopped attempts are void (lock lost): each is a counted runner_job_lost, then run again.
      const lost = of(c.ledger("w-down"), "attempt_failed", (e) => e.reason_code === "runner_job_lost");
      expect(lost.map((e) => `${String(e.item_id)}/${String(e.attempt)}`).sort()).toEqual(items.map((i) => `${i}/1`));
      expectNothingTwice(c, c.ledger("w-down"));
    },
    T,
  );
});
