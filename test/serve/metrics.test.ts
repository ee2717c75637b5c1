import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, expect, it } from "vitest";
import type { AttemptRecord } from "../../src/core/state.js";
import { Metrics, usageOf } from "../../src/serve/metrics.js";
import { Ledger } from "../helpers/events.js";
import { TempDirs } from "../helpers/tmp.js";
import { sandbox, writeWave } from "../helpers/world.js";

// The gauges a finished demo-style wave leaves at zero: a provider cooling down after a quota
// error, a live job, usage when an attempt record carries it.

const tmp = new TempDirs();
afterAll(() => tmp.cleanup());

it("quota cool-downs, quota errors and live jobs", async () => {
  const sb = sandbox(tmp);
  const start = new Date(Date.now() - 60_000).toISOString();
  const l = new Ledger({ items: ["bd-a1", "bd-b2"], start })
    .start()
    .dispatch("bd-a1", "implement", "opencode")
    .jobStarted("bd-a1")
    .finished("bd-a1", { state: "exited_err", exit_code: 1, runner_reason: "provider_quota_exhausted" })
    .dispatch("bd-b2", "implement", "cc-glm")
    .jobStarted("bd-b2");
  writeWave(sb, "wave-q", l.events);
  const m = new Metrics(sb.layout);
  const fams = parsePrometheusTextFormat(await m.render());
  const values = (name: string) => (fams.find((f) => f.name === name)?.metrics ?? []).map((x) => ({ ...x.labels, value: Number(x.value) }));
  const cool = values("dx_batch_provider_cooldown_seconds");
  expect(cool).toHaveLength(1);
  expect(cool[0]).toMatchObject({ wave: "wave-q", provider: "opencode" });
  // 15 minutes from an event about a minute old.
  expect(cool[0]?.value).toBeGreaterThan(13 * 60);
  expect(cool[0]?.value).toBeLessThanOrEqual(15 * 60);
  expect(values("dx_batch_quota_errors")).toEqual([{ provider: "opencode", value: 1 }]);
  expect(values("dx_batch_live_jobs")).toEqual([{ wave: "wave-q", provider: "cc-glm", worker: "local", value: 1 }]);
  expect(values("dx_batch_items")).toContainEqual({ wave: "wave-q", status: "pending", reason: "provider_quota_exhausted", value: 1 });
  expect(values("dx_batch_waves")).toEqual([{ state: "running", value: 1 }]);
});

it("usage is read from an attempt record when it carries one (SPEC §15.6)", () => {
  const rec = { provider: "x", usage: { input_tokens: 10, output_tokens: 5, cache_read_tokens: 2, cost_usd: 0.5 } } as unknown as AttemptRecord;
  expect(usageOf(rec)).toEqual({ input_tokens: 10, output_tokens: 5, cache_read_tokens: 2, cost_usd: 0.5 });
  expect(usageOf({ provider: "x" } as unknown as AttemptRecord)).toBeNull();
  // A figure the CLI did not give stays unknown (null), and a record with none has no usage at all.
  expect(
    usageOf({ provider: "x", usage: { input_tokens: 7, output_tokens: null, cache_read_tokens: null, cost_usd: null } } as unknown as AttemptRecord),
  ).toEqual({
    input_tokens: 7,
    output_tokens: null,
    cache_read_tokens: null,
    cost_usd: null,
  });
  expect(
    usageOf({ provider: "x", usage: { input_tokens: null, output_tokens: null, cache_read_tokens: null, cost_usd: null } } as unknown as AttemptRecord),
  ).toBeNull();
  expect(usageOf({ provider: "x", usage: { input_tokens: "many" } } as unknown as AttemptRecord)).toBeNull();
});
