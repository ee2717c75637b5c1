import { Redis } from "ioredis";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterEach, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { keys, type WorkerRecord } from "../../src/queue/protocol.js";
import { startServer } from "../../src/serve/server.js";
import type { WorkersDoc } from "../../src/serve/workers.js";
import { Cluster, cleanupClusters, waitFor } from "../bullmq/cluster.js";
import { get, getJson } from "./helpers.js";

// With the bullmq runner, serve reads the workers from Redis (and only reads): /api/workers is the
// document of `dx-batch workers --json`, /metrics labels each live job with the worker running it,
// and a Redis that stops answering is a 503 on /api/workers but not the end of /metrics.

afterEach(cleanupClusters);

const metricValues = async (url: string, name: string): Promise<Record<string, string | number>[]> => {
  const fams = parsePrometheusTextFormat((await get(url, "/metrics")).body);
  return (fams.find((f) => f.name === name)?.metrics ?? []).map((m) => ({ ...m.labels, value: Number(m.value) }));
};

it("lists the workers from Redis as `workers --json` does, labels live jobs by worker, and writes nothing there", async () => {
  const c = await Cluster.create({ items: ["wk-1", "wk-2"], scenario: { default: { implement: { gate: "go" }, review: { sleep_ms: 50 } } } });
  const h = c.startWorker("h1", { concurrency: 2 });
  await c.workerReady(h);
  const { config } = loadConfig({ flags: { config: c.configPath }, cwd: c.root, env: {} });
  const srv = await startServer({ config, host: "127.0.0.1", port: 0, token: null });
  try {
    const ctl = c.cli(["start", "--config", c.configPath, "--items", "wk-1,wk-2", "--wave-id", "w-serve"]);
    // Both implement jobs taken by the one worker, held at the gate.
    const doc = await waitFor(
      async () => {
        const d = (await getJson(srv.url, "/api/workers")).json as WorkersDoc;
        return d.workers.length === 1 && d.workers[0]?.jobs.length === 2 ? d : null;
      },
      { what: "the worker to run both jobs", timeoutMs: 60_000 },
    );
    const cli = await c.run("workers", ["--json"]);
    expect(cli.code, cli.err).toBe(0);
    // The heartbeat moves on between the two reads; everything else is the same document.
    const still = (d: { prefix: string | null; workers: WorkerRecord[] }) => ({ ...d, workers: d.workers.map((w) => ({ ...w, heartbeat_at: "" })) });
    expect(still(doc)).toEqual(still(JSON.parse(cli.out) as WorkersDoc));
    const worker = doc.workers[0];
    if (worker === undefined) throw new Error("no worker");
    expect(worker.host).toBe("h1");

    // Each live job is labelled with its worker; the worker's own jobs and capacity are series too.
    await waitFor(
      async () => {
        const live = await metricValues(srv.url, "dx_batch_live_jobs");
        return live.length === 1 && live[0]?.worker === worker.worker_id && live[0].value === 2;
      },
      { what: "both live jobs labelled with the worker", timeoutMs: 30_000 },
    );
    expect(await metricValues(srv.url, "dx_batch_worker_jobs")).toEqual([
      { worker: worker.worker_id, host: "h1", kind: "running", value: 2 },
      { worker: worker.worker_id, host: "h1", kind: "concurrency", value: 2 },
    ]);
    expect(await metricValues(srv.url, "dx_batch_queue_up")).toEqual([{ value: 1 }]);

    c.gate("go");
    const end = await ctl.done;
    expect(end.code, ctl.err()).toBe(0);

    // Read-only on Redis: a worker id whose heartbeat has expired stays in the set (the controller
    // and `dx-batch workers` forget such ids; serve, a reader, does not).
    const r = new Redis(c.redis.url);
    try {
      await r.sadd(keys(c.prefix).workers, "gone-worker");
      expect(((await getJson(srv.url, "/api/workers")).json as WorkersDoc).workers.map((w) => w.worker_id)).toEqual([worker.worker_id]);
      await get(srv.url, "/metrics");
      expect(await r.sismember(keys(c.prefix).workers, "gone-worker")).toBe(1);
    } finally {
      r.disconnect();
    }

    // Redis stops answering: /api/workers says so; /metrics still answers, with the queue down.
    await c.redis.stop();
    const down = await getJson(srv.url, "/api/workers");
    expect(down.status).toBe(503);
    expect(down.json).toMatchObject({ error: { reason_code: "queue_unavailable" } });
    // One scrape (each waits out the Redis read's time limit).
    const m = await get(srv.url, "/metrics");
    expect(m.status).toBe(200);
    const fams = parsePrometheusTextFormat(m.body);
    const values = (name: string): Record<string, string | number>[] =>
      (fams.find((f) => f.name === name)?.metrics ?? []).map((x) => ({ ...x.labels, value: Number(x.value) }));
    expect(values("dx_batch_queue_up")).toEqual([{ value: 0 }]);
    expect(values("dx_batch_items").filter((x) => x.wave === "w-serve" && x.status === "approved")).toHaveLength(1);
  } finally {
    await srv.close();
  }
}, 180_000);
