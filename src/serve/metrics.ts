import { Gauge, Histogram, Registry } from "prom-client";
import { wavesNewestFirst } from "../app/latest-wave.js";
import { LIST_HIDE_COMPLETED_AFTER_MS } from "../app/list.js";
import { readWave } from "../app/read-wave.js";
import type { AttemptRecord, WaveState } from "../core/state.js";
import { isDxError } from "../errors.js";
import type { Layout } from "../store/layout.js";
import { LedgerTail } from "./ledger-tail.js";
import type { WorkerSource } from "./workers.js";

// GET /metrics, Prometheus text format through prom-client. Gauges are recomputed from the waves
// at each scrape (the waves `list` shows by default); the dispatch-latency histogram is fed once
// per attempt from the ledgers (item_dispatched.at -> job_started.at of the same run_instance),
// read incrementally so a scrape costs only the new lines. The histogram has no labels: one
// series keeps it cheap and readable by every exposition parser. With the bullmq runner the live
// workers are read from Redis at each scrape: a live job is labelled with the worker running it
// (`queued` while none has taken it), and each worker's jobs are a series of their own.

export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** `dependency_blocked:demo-3` -> `dependency_blocked`: label values stay a small set. */
const code = (s: string | null | undefined): string => (s ?? "none").split(":")[0] ?? "none";

/** An attempt's usage (SPEC §15.6): null where the agent's CLI did not say. */
export interface Usage {
  input_tokens: number | null;
  output_tokens: number | null;
  cache_read_tokens: number | null;
  cost_usd: number | null;
}

/** The attempt's usage when its record carries any figure; null when none was reported (not zero). */
export function usageOf(rec: AttemptRecord): Usage | null {
  const u: unknown = "usage" in rec ? (rec as { usage?: unknown }).usage : undefined;
  if (typeof u !== "object" || u === null) return null;
  const num = (k: string): number | null => {
    const v: unknown = (u as Record<string, unknown>)[k];
    return typeof v === "number" && Number.isFinite(v) ? v : null;
  };
  const out = {
    input_tokens: num("input_tokens"),
    output_tokens: num("output_tokens"),
    cache_read_tokens: num("cache_read_tokens"),
    cost_usd: num("cost_usd"),
  };
  return Object.values(out).every((v) => v === null) ? null : out;
}

export const attemptOutcome = (h: AttemptRecord): string => code(h.verdict ?? h.reason_code ?? (h.completed_at === null ? "running" : h.state));

export class Metrics {
  readonly registry = new Registry();
  private readonly waves = new Gauge({ name: "dx_batch_waves", help: "Waves by state", labelNames: ["state"], registers: [this.registry] });
  private readonly items = new Gauge({
    name: "dx_batch_items",
    help: "Items by wave, status and reason code (the code before any ':')",
    labelNames: ["wave", "status", "reason"],
    registers: [this.registry],
  });
  private readonly attempts = new Gauge({
    name: "dx_batch_attempts",
    help: "Attempts (implement and review runs) by wave, provider, phase and outcome (verdict, else reason code, else runner state)",
    labelNames: ["wave", "provider", "phase", "outcome"],
    registers: [this.registry],
  });
  private readonly tokens = new Gauge({
    name: "dx_batch_tokens",
    help: "Tokens used by provider and kind, as the attempts reported them (an attempt that reported none adds 0)",
    labelNames: ["provider", "kind"],
    registers: [this.registry],
  });
  private readonly cost = new Gauge({
    name: "dx_batch_cost_usd",
    help: "Cost in USD by provider, as the attempts reported it (an attempt that reported none adds 0)",
    labelNames: ["provider"],
    registers: [this.registry],
  });
  private readonly quotaErrors = new Gauge({
    name: "dx_batch_quota_errors",
    help: "Attempts that ended in a provider quota error (not counted against max_attempts)",
    labelNames: ["provider"],
    registers: [this.registry],
  });
  private readonly cooldown = new Gauge({
    name: "dx_batch_provider_cooldown_seconds",
    help: "Seconds left of a provider's quota cool-down, per wave",
    labelNames: ["wave", "provider"],
    registers: [this.registry],
  });
  private readonly liveJobs = new Gauge({
    name: "dx_batch_live_jobs",
    help: "Jobs running now, by wave, provider and worker (`local`: this host's runner; `queued`: no worker has it yet; `unknown`: Redis did not answer)",
    labelNames: ["wave", "provider", "worker"],
    registers: [this.registry],
  });
  private readonly workerJobs = new Gauge({
    name: "dx_batch_worker_jobs",
    help: "Jobs each live worker of the queue runner runs now (every wave on the queue), and its concurrency",
    labelNames: ["worker", "host", "kind"],
    registers: [this.registry],
  });

  private readonly latency = new Histogram({
    name: "dx_batch_dispatch_latency_seconds",
    help: "From item_dispatched to job_started of the same run_instance, from ledger timestamps",
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly tails = new Map<string, { tail: LedgerTail; dispatched: Map<string, number> }>();

  private readonly now: () => number;
  private readonly workers: WorkerSource | null;
  /** Only with a queue runner: without one there is no Redis to be up or down. */
  private readonly queueUp: Gauge | null;

  constructor(
    private readonly layout: Layout,
    o: { workers?: WorkerSource | null; now?: () => number } = {},
  ) {
    this.now = o.now ?? Date.now;
    this.workers = o.workers ?? null;
    this.queueUp =
      this.workers === null
        ? null
        : new Gauge({ name: "dx_batch_queue_up", help: "1 when the queue runner's Redis answered this scrape, 0 when it did not", registers: [this.registry] });
  }

  private inFlight: Promise<string> | null = null;

  /** The exposition text. Scrapes that arrive during one share its answer (the gauges are reset and refilled in place). */
  render(): Promise<string> {
    this.inFlight ??= this.collect().finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  private async collect(): Promise<string> {
    for (const g of [this.waves, this.items, this.attempts, this.tokens, this.cost, this.quotaErrors, this.cooldown, this.liveJobs, this.workerJobs]) g.reset();
    const nowMs = this.now();
    const workerOf = await this.readWorkers();
    for (const { wave_id } of wavesNewestFirst(this.layout.root)) {
      let state: WaveState;
      try {
        const w = await readWave(this.layout, wave_id);
        if (w === null) continue;
        state = w.state;
      } catch (e) {
        if (!isDxError(e)) throw e;
        this.waves.inc({ state: "unreadable" });
        continue;
      }
      if (state.status === "completed" && nowMs - Date.parse(state.completed_at ?? state.updated_at) > LIST_HIDE_COMPLETED_AFTER_MS) continue;
      this.wave(state, nowMs, workerOf);
      this.feedLatency(wave_id);
    }
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Which worker runs a job (by run_instance): `local` without a queue runner, `unknown` while Redis does not answer. */
  private async readWorkers(): Promise<(runInstance: string | null) => string> {
    if (this.workers === null) return () => "local";
    const out = new Map<string, string>();
    try {
      for (const w of await this.workers.listWorkers()) {
        this.workerJobs.set({ worker: w.worker_id, host: w.host, kind: "running" }, w.jobs.length);
        this.workerJobs.set({ worker: w.worker_id, host: w.host, kind: "concurrency" }, w.concurrency);
        for (const j of w.jobs) out.set(j.run_instance, w.worker_id);
      }
      this.queueUp?.set(1);
    } catch {
      // Redis is down: the rest of the scrape still answers, and says so.
      this.queueUp?.set(0);
      return () => "unknown";
    }
    return (ri) => (ri === null ? undefined : out.get(ri)) ?? "queued";
  }

  private wave(s: WaveState, nowMs: number, workerOf: (runInstance: string | null) => string): void {
    const wave = s.wave_id;
    this.waves.inc({ state: s.status });
    for (const it of s.items) {
      this.items.inc({ wave, status: it.status, reason: code(it.reason_code) });
      if (it.job !== null && it.provider !== null) this.liveJobs.inc({ wave, provider: it.provider, worker: workerOf(it.run_instance) });
      for (const h of it.history) {
        this.attempts.inc({ wave, provider: h.provider, phase: h.phase, outcome: attemptOutcome(h) });
        if (!h.charged) this.quotaErrors.inc({ provider: h.provider });
        const u = usageOf(h);
        // Every provider that ran gets its series, at 0 until usage is reported.
        this.tokens.inc({ provider: h.provider, kind: "input" }, u?.input_tokens ?? 0);
        this.tokens.inc({ provider: h.provider, kind: "output" }, u?.output_tokens ?? 0);
        this.tokens.inc({ provider: h.provider, kind: "cache_read" }, u?.cache_read_tokens ?? 0);
        this.cost.inc({ provider: h.provider }, u?.cost_usd ?? 0);
      }
    }
    for (const [provider, until] of Object.entries(s.cooldowns)) {
      this.cooldown.set({ wave, provider }, Math.max(0, (Date.parse(until) - nowMs) / 1000));
    }
  }

  private feedLatency(wave: string): void {
    let t = this.tails.get(wave);
    if (t === undefined) {
      t = { tail: new LedgerTail(this.layout, wave, { gapGraceMs: 0 }), dispatched: new Map() };
      this.tails.set(wave, t);
    }
    for (const e of t.tail.read()) {
      const v = e.value;
      if (typeof v.run_instance !== "string" || e.at === null) continue;
      if (e.event === "item_dispatched") {
        t.dispatched.set(v.run_instance, Date.parse(e.at));
      } else if (e.event === "job_started") {
        const d = t.dispatched.get(v.run_instance);
        if (d === undefined) continue;
        t.dispatched.delete(v.run_instance);
        this.latency.observe(Math.max(0, (Date.parse(e.at) - d) / 1000));
      }
    }
  }
}
