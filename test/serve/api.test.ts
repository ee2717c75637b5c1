import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WaveEvent } from "../../src/core/events.js";
import type { RunningServer } from "../../src/serve/server.js";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { Ledger } from "../helpers/events.js";
import { buildCli } from "../helpers/build.js";
import { runCli, treeState } from "../helpers/cli.js";
import { killAllChildren } from "../helpers/procs.js";
import { TempDirs } from "../helpers/tmp.js";
import { sandbox, writeWave, type Sandbox } from "../helpers/world.js";
import { attemptLogs } from "../../src/serve/logs.js";
import { get, getJson, serve, slowSandbox } from "./helpers.js";

// The API against a real wave run by the real CLI: each document equals the CLI's own --json
// output; invalid ids are 400 and unknown ones 404, with reason codes; no request reads outside
// the served directories; and nothing in the artifact dir changes while it is served.

const tmp = new TempDirs();
const W = "wave-api";
let sb: Sandbox;
let bin = "";
let srv: RunningServer;
let before: Record<string, string>;

const cli = async (...args: string[]) => {
  const r = await runCli(bin, [...args, "--config", sb.configPath], { cwd: sb.root });
  return r;
};

beforeAll(async () => {
  bin = buildCli();
  sb = slowSandbox(tmp, 0);
  const r = await cli("start", "--items", "ok-1,rev-2,blk-3", "--wave-id", W, "--repo", (sb as Sandbox & { repo: string }).repo);
  expect([0, 4], r.stderr).toContain(r.code);
  before = treeState(sb.art);
  // The config file serve was given, as the CLI's next_command names it.
  srv = await serve(sb, { configSource: sb.configPath });
}, 180_000);

afterAll(async () => {
  await srv?.close();
  await killAllChildren();
  tmp.cleanup();
});

describe("documents equal the CLI's --json", () => {
  it("GET /api/waves is list --json", async () => {
    const r = await cli("list", "--json");
    expect(r.code, r.stderr).toBe(0);
    const api = await getJson(srv.url, "/api/waves");
    expect(api.status).toBe(200);
    expect(api.json).toEqual(JSON.parse(r.stdout));
    expect((api.json as { wave_id: string }[]).map((w) => w.wave_id)).toEqual([W]);
  });

  it("GET /api/waves/:id is status --json", async () => {
    const r = await cli("status", "--json", "--wave-id", W);
    expect(r.code, r.stderr).toBe(0);
    const api = await getJson(srv.url, `/api/waves/${W}`);
    expect(api.status).toBe(200);
    expect(api.json).toEqual(JSON.parse(r.stdout));
  });

  it("GET /api/waves/:id/report is report --format json", async () => {
    const r = await cli("report", "--format", "json", "--wave-id", W);
    expect(r.code, r.stderr).toBe(0);
    const api = await getJson(srv.url, `/api/waves/${W}/report`);
    expect(api.status).toBe(200);
    expect(api.json).toEqual(JSON.parse(r.stdout));
    const items = (api.json as { items: { beads_id: string; attempts: unknown[] }[] }).items;
    expect(items.find((i) => i.beads_id === "rev-2")?.attempts.length).toBe(4); // impl, review, impl, review
  });
});

describe("workers", () => {
  it("without a queue runner: no prefix, no workers, and why", async () => {
    const r = await getJson(srv.url, "/api/workers");
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ prefix: null, workers: [], note: expect.stringContaining("no queue runner") as string });
  });
});

describe("attempt logs", () => {
  it("gives each attempt's own log, tail first, in windows", async () => {
    const all = await get(srv.url, `/api/waves/${W}/items/rev-2/logs?attempt=2&phase=implement`);
    expect(all.status, all.body).toBe(200);
    expect(all.headers["x-log-attempt"]).toBe("2");
    expect(all.headers["x-log-phase"]).toBe("implement");
    expect(all.body).toContain("implement rev-2 attempt 2 ends");
    // Each answer is the file the item's ledger recorded for that attempt (job_started.log_path).
    const logs = attemptLogs(sb.layout, W, "rev-2") ?? [];
    expect(logs.map((l) => `${l.phase} ${l.attempt}`)).toEqual(["implement 1", "review 1", "implement 2", "review 2"]);
    for (const l of logs) {
      const r = await get(srv.url, `/api/waves/${W}/items/rev-2/logs?attempt=${l.attempt}&phase=${l.phase}`);
      expect(r.status).toBe(200);
      expect(r.body).toBe(readFileSync(l.path, "utf8"));
      // Where the runner gives each attempt its own file (SPEC §15.6), that file is the attempt's own.
      if (logs.filter((o) => o.path === l.path).length === 1) expect(r.body).toContain(`${l.phase} rev-2 attempt ${l.attempt} ends`);
    }
    // attempt=N alone is implement attempt N, as `dx-batch logs --attempt N`.
    const cliLog = await cli("logs", "rev-2", "--attempt", "2", "--wave-id", W);
    expect(cliLog.code, cliLog.stderr).toBe(0);
    const alone = await get(srv.url, `/api/waves/${W}/items/rev-2/logs?attempt=2`);
    expect([alone.headers["x-log-phase"], alone.headers["x-log-attempt"]]).toEqual(["implement", "2"]);
    expect(alone.body).toBe(all.body);
    expect(cliLog.stdout).toContain(all.body.trim());
    // Without phase and attempt: the latest run of the item.
    const latest = await get(srv.url, `/api/waves/${W}/items/rev-2/logs`);
    expect([latest.headers["x-log-phase"], latest.headers["x-log-attempt"]]).toEqual(["review", "2"]);
    // A window of the last 10 bytes, then the one before it.
    const size = Number(all.headers["x-log-size"]);
    const tail = await get(srv.url, `/api/waves/${W}/items/rev-2/logs?attempt=2&phase=implement&bytes=10`);
    expect(tail.headers["x-log-start"]).toBe(String(size - 10));
    expect(all.body.endsWith(tail.body)).toBe(true);
    const prev = await get(srv.url, `/api/waves/${W}/items/rev-2/logs?attempt=2&phase=implement&bytes=10&before=${size - 10}`);
    expect(all.body.endsWith(prev.body + tail.body)).toBe(true);
  });
});

describe("refusals", () => {
  const cases: [string, number, string][] = [
    ["/api/waves/bad$wave", 400, "invalid_wave_id"],
    ["/api/waves/-starts-with-dash/report", 400, "invalid_wave_id"],
    [`/api/waves/${"x".repeat(65)}`, 400, "invalid_wave_id"],
    [`/api/waves/${W}/items/not_an_item/logs`, 400, "invalid_item_id"],
    [`/api/waves/${W}/items/ok-1/logs?attempt=0`, 400, "invalid_attempt"],
    [`/api/waves/${W}/items/ok-1/logs?phase=deploy`, 400, "invalid_phase"],
    [`/api/waves/${W}/events?since=abc`, 400, "invalid_last_event_id"],
    ["/api/waves/no-such-wave", 404, "wave_not_found"],
    ["/api/waves/no-such-wave/report", 404, "wave_not_found"],
    ["/api/waves/no-such-wave/events", 404, "wave_not_found"],
    ["/api/waves/no-such-wave/items/ok-1/logs", 404, "wave_not_found"],
    [`/api/waves/${W}/items/zz-9/logs`, 404, "item_not_found"],
    [`/api/waves/${W}/items/ok-1/logs?attempt=7`, 404, "log_not_found"],
    ["/api/nothing", 404, "not_found"],
    ["/nothing.html", 404, "not_found"],
  ];
  it.each(cases)("GET %s -> %i %s", async (target, status, code) => {
    const r = await getJson(srv.url, target);
    expect(r.status).toBe(status);
    expect(r.json).toMatchObject({ error: { reason_code: code } });
  });

  it("refuses writes: the server is read-only", async () => {
    const r = await new Promise<number>((resolve, reject) => {
      const u = new URL(srv.url);
      import("node:http")
        .then(({ request }) => {
          const req = request({ host: u.hostname, port: u.port, path: `/api/waves/${W}`, method: "DELETE" }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on("error", reject);
          req.end();
        })
        .catch(reject);
    });
    expect(r).toBe(405);
  });
});

describe("path traversal", () => {
  const targets = [
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/api/waves/..%2f..%2f..%2fetc/report",
    "/api/waves/%2e%2e/report",
    `/api/waves/${W}/items/..%2f..%2f..%2f..%2fetc%2fpasswd/logs`,
    `/api/waves/${W}/items/ok-1%2f..%2f..%2fx/logs`,
    "/..%5c..%5cpackage.json",
    "/web/../package.json",
    "/app.js/../../package.json",
  ];
  it.each(targets.filter((t) => /\.\.|%2e%2e/i.test(t)))("GET %s: a dot-dot segment is refused as path_traversal", async (target) => {
    const r = await getJson(srv.url, target);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ error: { reason_code: "path_traversal" } });
  });

  it.each(targets)("GET %s is refused and reads nothing", async (target) => {
    const r = await get(srv.url, target);
    expect([400, 404]).toContain(r.status);
    expect(r.body).not.toMatch(/root:|"dependencies"/);
    const code = (JSON.parse(r.body) as { error: { reason_code: string } }).error.reason_code;
    expect(["path_traversal", "invalid_wave_id", "invalid_item_id", "not_found"]).toContain(code);
  });

  it("a log path recorded outside the served directories is not read, nor one reached by a symlink", async () => {
    const s2 = sandbox(tmp);
    const secret = path.join(s2.root, "secret.txt");
    writeFileSync(secret, "top secret\n");
    mkdirSync(path.join(s2.root, "runner"), { recursive: true });
    symlinkSync(secret, path.join(s2.root, "runner", "link.log"));
    const l = new Ledger({ items: ["bd-a1", "bd-b2"] })
      .start()
      .dispatch("bd-a1", "implement", "opencode")
      .jobStarted("bd-a1")
      .dispatch("bd-b2", "implement", "opencode")
      .jobStarted("bd-b2");
    const events: WaveEvent[] = l.events.map((e) =>
      e.event === "job_started" ? { ...e, log_path: e.item_id === "bd-a1" ? secret : path.join(s2.root, "runner", "link.log") } : e,
    );
    writeWave(s2, "wave-secret", events);
    const s2srv = await serve(s2);
    try {
      for (const item of ["bd-a1", "bd-b2"]) {
        const r = await getJson(s2srv.url, `/api/waves/wave-secret/items/${item}/logs`);
        expect(r.status).toBe(404);
        expect(r.json).toMatchObject({ error: { reason_code: "log_not_found" } });
        expect(JSON.stringify(r.json)).not.toContain("top secret");
      }
    } finally {
      await s2srv.close();
    }
  });
});

describe("/metrics", () => {
  it("parses as Prometheus exposition and its counts match report", async () => {
    const r = await get(srv.url, "/metrics");
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = parsePrometheusTextFormat(r.body);
    const fam = (name: string) => {
      const f = families.find((x) => x.name === name);
      if (f === undefined) throw new Error(`no ${name} in /metrics`);
      return f;
    };
    const report = (await getJson(srv.url, `/api/waves/${W}/report`)).json as {
      stats: Record<string, number>;
      items: {
        attempts: {
          provider: string;
          phase: string;
          started_at: string | null;
          completed_at: string | null;
          verdict: string | null;
          reason_code: string | null;
          state: string | null;
        }[];
      }[];
    };
    const byStatus: Record<string, number> = {};
    for (const m of fam("dx_batch_items").metrics) {
      if (m.labels?.wave !== W) continue;
      const st = m.labels.status ?? "?";
      byStatus[st] = (byStatus[st] ?? 0) + Number(m.value);
    }
    for (const [status, n] of Object.entries(report.stats)) if (status !== "total") expect(byStatus[status] ?? 0, status).toBe(n);
    expect(Object.values(byStatus).reduce((a, b) => a + b, 0)).toBe(report.stats.total);

    const attempts = report.items.flatMap((i) => i.attempts);
    const perRun: Record<string, number> = {};
    for (const m of fam("dx_batch_attempts").metrics) {
      if (m.labels?.wave !== W) continue;
      const k = `${m.labels.provider} ${m.labels.phase} ${m.labels.outcome}`;
      perRun[k] = (perRun[k] ?? 0) + Number(m.value);
    }
    const expected: Record<string, number> = {};
    // Outcome: the verdict, else the reason code (before any ':'), else the runner state.
    for (const a of attempts) {
      const outcome = (a.verdict ?? a.reason_code ?? (a.completed_at === null ? "running" : a.state) ?? "none").split(":")[0];
      const k = `${a.provider} ${a.phase} ${outcome}`;
      expected[k] = (expected[k] ?? 0) + 1;
    }
    expect(Object.keys(expected).some((k) => k.endsWith(" APPROVED"))).toBe(true);
    expect(perRun).toEqual(expected);

    const latency = fam("dx_batch_dispatch_latency_seconds");
    expect(latency.type).toBe("HISTOGRAM");
    const observed = latency.metrics.reduce((n, m) => n + Number(m.count), 0);
    expect(observed).toBe(attempts.filter((a) => a.started_at !== null).length);

    const providers = [...new Set(attempts.map((a) => a.provider))].sort();
    const tokenProviders = [...new Set(fam("dx_batch_tokens").metrics.map((m) => m.labels?.provider))].sort();
    expect(tokenProviders).toEqual(providers);
    // Tokens and cost by provider are the sums of what the attempts reported (agent-a reports, agent-b does not).
    type U = { input_tokens: number | null; output_tokens: number | null; cost_usd: number | null } | null;
    const usage = {
      attempts: ((await getJson(srv.url, `/api/waves/${W}/report`)).json as { items: { attempts: { provider: string; usage: U }[] }[] }).items.flatMap(
        (i) => i.attempts,
      ),
    };
    const want: Record<string, number> = {};
    for (const a of usage.attempts) {
      for (const [kind, v] of [
        ["input", a.usage?.input_tokens],
        ["output", a.usage?.output_tokens],
        ["cost", a.usage?.cost_usd],
      ] as const)
        want[`${a.provider} ${kind}`] = (want[`${a.provider} ${kind}`] ?? 0) + (v ?? 0);
    }
    const got: Record<string, number> = {};
    for (const m of fam("dx_batch_tokens").metrics) if (m.labels?.kind !== "cache_read") got[`${m.labels?.provider} ${m.labels?.kind}`] = Number(m.value);
    for (const m of fam("dx_batch_cost_usd").metrics) got[`${m.labels?.provider} cost`] = Number(m.value);
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    for (const [k, v] of Object.entries(want)) expect(got[k], k).toBeCloseTo(v, 9);
    expect(want["agent-a input"]).toBeGreaterThan(0);
    expect(usage.attempts.filter((a) => a.provider === "agent-b").every((a) => a.usage === null || Object.values(a.usage).every((v) => v === null))).toBe(true);
    expect(fam("dx_batch_waves").metrics).toEqual([{ labels: { state: "completed" }, value: "1" }]);
    expect(families.find((f) => f.name === "dx_batch_live_jobs")?.metrics ?? []).toEqual([]);

    // A second scrape reads only new ledger lines: the histogram does not count anything twice.
    const again = parsePrometheusTextFormat((await get(srv.url, "/metrics")).body);
    expect(again.find((f) => f.name === "dx_batch_dispatch_latency_seconds")?.metrics.reduce((n, m) => n + Number(m.count), 0)).toBe(observed);
  });
});

describe("read-only", () => {
  it("no request changed anything in the artifact dir", async () => {
    await getJson(srv.url, "/api/waves");
    await get(srv.url, "/metrics");
    expect(treeState(sb.art)).toEqual(before);
    expect(readFileSync(sb.layout.waveState(W), "utf8").length).toBeGreaterThan(0);
  });
});
