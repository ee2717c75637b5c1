import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "vitest";
import { readWave } from "../../src/app/read-wave.js";
import { it, serve, slowSandbox, startCli } from "./helpers.js";

// OpenTelemetry: with an endpoint, the server sends one span per attempt through the official SDK
// over OTLP/HTTP. The receiver is a plain HTTP server inside the test that keeps what it is sent.

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
}
interface OtlpSpan {
  name: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: OtlpValue }[];
  status?: { code?: number };
}
interface OtlpRequest {
  resourceSpans: { resource: { attributes: { key: string; value: OtlpValue }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}

async function receiver(): Promise<{ url: string; requests: { path: string; type: string; body: OtlpRequest }[]; server: Server }> {
  const requests: { path: string; type: string; body: OtlpRequest }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      requests.push({ path: req.url ?? "", type: req.headers["content-type"] ?? "", body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as OtlpRequest });
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}

const attr = (s: OtlpSpan, key: string): string | number | undefined => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue === undefined ? undefined : Number(v.intValue));
};

it("one span per attempt, with provider, item and outcome, to a local OTLP/HTTP receiver", async ({ bin, tmp }) => {
  const rx = await receiver();
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
      [attr(s, "dx_batch.item_id"), attr(s, "dx_batch.phase"), attr(s, "dx_batch.attempt"), attr(s, "dx_batch.provider"), attr(s, "dx_batch.outcome")].join(
        " ",
      ),
    )
    .sort();
  const want = attempts
    .map(({ it, h }) => [it.beads_id, h.phase, h.attempt, h.provider, h.verdict ?? (it.beads_id.startsWith("blk-") ? "blocked" : "completed")].join(" "))
    .sort();
  expect(got).toEqual(want);
  for (const s of spans) {
    expect(BigInt(s.endTimeUnixNano) >= BigInt(s.startTimeUnixNano)).toBe(true);
    expect(attr(s, "dx_batch.wave_id")).toBe(W);
    // OK for a completed implement or any clean review; ERROR for the implement that reported blocked.
    expect(s.status?.code, s.name).toBe(attr(s, "dx_batch.outcome") === "blocked" ? 2 : 1);
  }
}, 150_000);
