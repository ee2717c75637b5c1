import { expect } from "vitest";
import { readWave } from "../../src/app/read-wave.js";
import { validateConfigFile } from "../../src/config/validator.generated.js";
import { it, otlpReceiver, serve, slowSandbox, spanAttr, startCli } from "./helpers.js";

// OpenTelemetry: with an endpoint, the server sends one span per attempt through the official SDK
// over OTLP/HTTP. The receiver is a plain HTTP server inside the test that keeps what it is sent.

it("one span per attempt, with provider, item and outcome, to a local OTLP/HTTP receiver", async ({ bin, tmp }) => {
  const rx = await otlpReceiver();
  const sb = slowSandbox(tmp, 100);
  const W = "wave-otel";
  const srv = await serve(sb, { otel: { endpoint: rx.url, intervalMs: 200 } });
  try {
    const r = await startCli(bin, ["start", "--items", "ok-1,rev-2,blk-3", "--wave-id", W, "--config", sb.configPath, "--repo", sb.repo], sb.root).exited;
    expect([0, 4], r.stderr).toContain(r.code);
  } finally {
    await srv.close(); // reads the last lines and flushes the exporter
    rx.server.close();
  }
  expect(rx.requests.length).toBeGreaterThan(0);
  for (const q of rx.requests) {
    expect(q.path).toBe("/v1/traces");
    expect(q.type).toMatch(/^application\/json/);
    expect(q.body.resourceSpans[0]?.resource.attributes).toContainEqual({ key: "service.name", value: { stringValue: "dx-batch" } });
  }
  const spans = rx.requests.flatMap((q) => q.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)));
  const w = await readWave(sb.layout, W);
  const attempts = (w?.state.items ?? []).flatMap((it) => it.history.map((h) => ({ it, h })));
  expect(spans.length).toBe(attempts.length);
  const got = spans
    .map((s) =>
      [
        spanAttr(s, "dx_batch.item_id"),
        spanAttr(s, "dx_batch.phase"),
        spanAttr(s, "dx_batch.attempt"),
        spanAttr(s, "dx_batch.provider"),
        spanAttr(s, "dx_batch.outcome"),
      ].join(" "),
    )
    .sort();
  const want = attempts
    .map(({ it, h }) => [it.beads_id, h.phase, h.attempt, h.provider, h.verdict ?? (it.beads_id.startsWith("blk-") ? "blocked" : "completed")].join(" "))
    .sort();
  expect(got).toEqual(want);
  for (const s of spans) {
    expect(BigInt(s.endTimeUnixNano) >= BigInt(s.startTimeUnixNano)).toBe(true);
    expect(spanAttr(s, "dx_batch.wave_id")).toBe(W);
    // OK for a completed implement or any clean review; ERROR for the implement that reported blocked.
    expect(s.status?.code, s.name).toBe(spanAttr(s, "dx_batch.outcome") === "blocked" ? 2 : 1);
  }
}, 150_000);

it("otel.endpoint in the config is an http(s) URL, and nothing else", () => {
  expect(validateConfigFile({ otel: { endpoint: "http://collector:4318" } })).toBe(true);
  expect(validateConfigFile({ otel: { endpoint: "https://collector.example/v1/traces" } })).toBe(true);
  for (const bad of [{ endpoint: "ftp://x" }, { endpoint: "http://a b" }, {}, { endpoint: "http://x", extra: 1 }])
    expect(validateConfigFile({ otel: bad }), JSON.stringify(bad)).toBe(false);
});
