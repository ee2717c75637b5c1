import type { Attributes, Tracer } from "@opentelemetry/api";
import { wavesNewestFirst } from "../app/latest-wave.js";
import type { Layout } from "../store/layout.js";
import { LedgerTail, type RawEvent } from "./ledger-tail.js";

// Optional OpenTelemetry traces (issue #15): one span per attempt, from item_dispatched to the
// event that ended it (job_finished or attempt_failed), with provider, item and outcome. The spans
// are built from the ledgers, the same facts as everything else the server shows, and exported by
// the official SDK over OTLP/HTTP. The SDK is loaded only when an endpoint is configured.
// Attempts that ended before the exporter started are not sent again.

export interface OtelOptions {
  /** OTLP/HTTP base URL (`http://collector:4318`), or the full traces URL ending in /v1/traces. */
  endpoint: string;
  serviceName?: string;
  /** How often the ledgers are read for ended attempts. */
  intervalMs?: number;
  now?: () => number;
}

export const tracesUrl = (endpoint: string): string => (/\/v1\/traces\/?$/.test(endpoint) ? endpoint : `${endpoint.replace(/\/+$/, "")}/v1/traces`);

interface Dispatch {
  at: string;
  attrs: Attributes;
}

const str = (v: unknown): string | null => (typeof v === "string" ? v : null);

/** What an ended attempt came to: the review verdict, the implement status, else why it failed. */
export function attemptOutcome(e: RawEvent): { outcome: string; ok: boolean } {
  const v = e.value;
  if (e.event === "attempt_failed") return { outcome: str(v.reason_code) ?? "attempt_failed", ok: false };
  const contract = typeof v.contract === "object" && v.contract !== null ? (v.contract as Record<string, unknown>) : null;
  const verdict = str(contract?.verdict);
  const status = str(contract?.status);
  const state = str(v.state) ?? "unknown";
  const clean = state === "exited_ok" || state === "no_op_success";
  if (verdict !== null) return { outcome: verdict, ok: clean };
  if (status !== null) return { outcome: status, ok: clean && (status === "completed" || status === "partial") };
  return { outcome: str(v.runner_reason) ?? str(v.contract_error) ?? state, ok: false };
}

export class AttemptSpans {
  private readonly tails = new Map<string, { tail: LedgerTail; open: Map<string, Dispatch> }>();
  private timer: NodeJS.Timeout | null = null;
  private readonly since: number;

  private constructor(
    private readonly layout: Layout,
    private readonly tracer: Tracer,
    private readonly provider: { forceFlush(): Promise<void>; shutdown(): Promise<void> },
    private readonly o: OtelOptions,
  ) {
    this.since = (o.now ?? Date.now)();
  }

  static async start(layout: Layout, o: OtelOptions): Promise<AttemptSpans> {
    const [{ BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
      import("@opentelemetry/sdk-trace-base"),
      import("@opentelemetry/exporter-trace-otlp-http"),
      import("@opentelemetry/resources"),
    ]);
    const exporter = new OTLPTraceExporter({ url: tracesUrl(o.endpoint) });
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ "service.name": o.serviceName ?? "dx-batch" }),
      spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 500 })],
    });
    const spans = new AttemptSpans(layout, provider.getTracer("dx-batch"), provider, o);
    spans.scan();
    spans.timer = setInterval(() => spans.scan(), o.intervalMs ?? 2000);
    spans.timer.unref();
    return spans;
  }

  /** Read every wave's new ledger lines; one span per attempt that ended since the start. */
  scan(): void {
    for (const { wave_id } of wavesNewestFirst(this.layout.root)) {
      let t = this.tails.get(wave_id);
      if (t === undefined) {
        t = { tail: new LedgerTail(this.layout, wave_id, { gapGraceMs: 0 }), open: new Map() };
        this.tails.set(wave_id, t);
      }
      let events: RawEvent[];
      try {
        events = t.tail.read();
      } catch {
        continue;
      }
      for (const e of events) this.event(wave_id, t.open, e);
    }
  }

  private event(wave: string, open: Map<string, Dispatch>, e: RawEvent): void {
    const v = e.value;
    const ri = str(v.run_instance);
    if (ri === null || e.at === null) return;
    if (e.event === "item_dispatched") {
      open.set(ri, {
        at: e.at,
        attrs: {
          "dx_batch.wave_id": wave,
          "dx_batch.item_id": str(v.item_id) ?? "",
          "dx_batch.phase": str(v.phase) ?? "",
          "dx_batch.attempt": typeof v.attempt === "number" ? v.attempt : 0,
          "dx_batch.provider": str(v.provider) ?? "",
          "dx_batch.run_instance": ri,
        },
      });
      return;
    }
    if (e.event !== "job_finished" && e.event !== "attempt_failed") return;
    const d = open.get(ri);
    if (d === undefined) return;
    open.delete(ri);
    if (Date.parse(e.at) < this.since) return;
    const { outcome, ok } = attemptOutcome(e);
    const attrs: Attributes = { ...d.attrs, "dx_batch.outcome": outcome };
    if (typeof v.state === "string") attrs["dx_batch.runner_state"] = v.state;
    if (typeof v.exit_code === "number") attrs["dx_batch.exit_code"] = v.exit_code;
    const span = this.tracer.startSpan(`${String(d.attrs["dx_batch.phase"])} ${String(d.attrs["dx_batch.item_id"])}`, {
      startTime: new Date(d.at),
      attributes: attrs,
    });
    // SpanStatusCode: 1 = OK, 2 = ERROR (numeric so @opentelemetry/api is needed only for types).
    span.setStatus(ok ? { code: 1 } : { code: 2, message: outcome });
    span.end(new Date(e.at));
  }

  async flush(): Promise<void> {
    await this.provider.forceFlush();
  }

  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.scan();
    await this.provider.shutdown();
  }
}
