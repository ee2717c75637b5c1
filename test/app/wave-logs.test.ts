import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { keepLogsWithWave, keptLogPath } from "../../src/app/wave-logs.js";
import type { JobRef, JobSignals, RunnerPort } from "../../src/runner/port.js";

// keepLogsWithWave wraps the runner: what it adds (the kept log path) must not take away what the
// runner is asked (the `final` read that ends a job's follower).

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("keepLogsWithWave", () => {
  it("passes signals' options through, and reports the kept log path", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "dx-wave-logs-"));
    dirs.push(dir);
    const log = path.join(dir, "bd-1.log");
    writeFileSync(log, "");
    const asked: ({ final?: boolean } | undefined)[] = [];
    const base = {
      signals(_ref: JobRef, o?: { final?: boolean }): JobSignals {
        asked.push(o);
        return {
          quota_retries: 0,
          usage: { input_tokens: null, output_tokens: null, cache_read_tokens: null, cost_usd: null },
          last_error: null,
          log_path: log,
        };
      },
    } as unknown as RunnerPort;
    const logs = path.join(dir, "logs");
    const ref: JobRef = { job_id: "bd-1", provider: "p", run_instance: "ri-1" };
    const wrapped = keepLogsWithWave(base, logs);
    wrapped.signals?.(ref);
    wrapped.signals?.(ref, { final: true });
    expect(asked).toEqual([undefined, { final: true }]);
    // No link was made for this run (no start), so the runner's own path is reported.
    expect(wrapped.signals?.(ref)?.log_path).toBe(log);
    expect(keptLogPath(logs, "ri-1")).toBe(path.join(logs, "ri-1.log"));
  });
});
