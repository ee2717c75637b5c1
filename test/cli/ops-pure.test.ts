import { describe, expect, it } from "vitest";
import { WaveExit, waveExitCode } from "../../src/app/exit-codes.js";
import { retryConfig } from "../../src/app/retry.js";
import { firstRunLine } from "../../src/app/start.js";
import { demoExitCode } from "../../src/app/demo.js";
import { recordedConfig } from "../../src/app/wire.js";
import type { AppContext } from "../../src/app/context.js";
import { colourEnabled } from "../../src/cli/colour.js";
import { CONFIG_DEFAULTS, defaultRoots } from "../../src/config/defaults.js";
import type { ResolvedConfig } from "../../src/config/types.js";
import type { WaveState } from "../../src/core/state.js";
import { createLayout } from "../../src/store/layout.js";

// Issue #13, the pure parts: the exit codes of start/resume/retry, when the live table is
// coloured, the first-run line without a config file, and the secrets a retry takes from today.

const stats = (approved: number, total: number) => ({ stats: { approved, total } }) as unknown as WaveState;

describe("exit codes of start, resume and retry", () => {
  it.each([
    ["completed, every item approved", { kind: "completed" } as const, stats(3, 3), 0],
    ["completed, an item not approved", { kind: "completed" } as const, stats(2, 3), 4],
    ["completed, nothing approved", { kind: "completed" } as const, stats(0, 2), 4],
    ["paused", { kind: "paused" } as const, stats(0, 2), 2],
    ["failed", { kind: "failed", reason_code: "no_provider_available" } as const, stats(0, 2), 1],
    ["cancelled", { kind: "cancelled" } as const, stats(1, 2), 1],
    ["controller lock lost", { kind: "lost_lock" } as const, stats(0, 2), 1],
    ["handed to a background controller (--detach)", { kind: "detached" } as const, stats(0, 2), 0],
  ])("%s: exit %#", (_name, end, state, want) => {
    expect(waveExitCode(end, state)).toBe(want);
  });

  it("the table has exactly the codes the issue names", () => {
    expect(Object.values(WaveExit).sort()).toEqual([0, 1, 2, 4]);
  });
});

describe("dx-batch demo's exit", () => {
  it.each([
    ["ends as designed: demo-3 and its dependent demo-5 not approved", 4, ["demo-5", "demo-3"], 0],
    ["another item not approved too", 4, ["demo-3", "demo-5", "demo-1"], 4],
    ["a different item not approved", 4, ["demo-1", "demo-5"], 4],
    ["every item approved (not the design)", 0, [], 0],
    ["paused", 2, [], 2],
    ["refused or failed", 1, [], 1],
  ])("%s", (_name, code, notApproved, want) => {
    expect(demoExitCode(code, notApproved)).toBe(want);
  });
});

describe("colour", () => {
  it.each([
    ["a TTY", {}, true, true],
    ["a pipe", {}, false, false],
    ["a dumb terminal", { TERM: "dumb" }, true, false],
    ["NO_COLOR on a TTY", { NO_COLOR: "1" }, true, false],
    ["an empty NO_COLOR is unset", { NO_COLOR: "" }, true, true],
    ["FORCE_COLOR in a pipe", { FORCE_COLOR: "1" }, false, true],
    ["FORCE_COLOR wins over NO_COLOR", { FORCE_COLOR: "1", NO_COLOR: "1" }, false, true],
    ["FORCE_COLOR=0 on a TTY", { FORCE_COLOR: "0" }, true, false],
    ["FORCE_COLOR=false on a TTY", { FORCE_COLOR: "false" }, true, false],
  ])("%s", (_name, env, tty, want) => {
    expect(colourEnabled(env as NodeJS.ProcessEnv, tty)).toBe(want);
  });
});

const base = (over: Partial<ResolvedConfig> = {}): ResolvedConfig => ({
  ...CONFIG_DEFAULTS,
  ...defaultRoots({ DX_BATCH_HOME: "/h" }),
  tracker: { type: "none" },
  ...over,
});

describe("the first run", () => {
  it("names the defaults and the none tracker when no config file is in use", () => {
    const config = base();
    const c = { config, configSource: null, layout: createLayout(config.artifact_dir), env: {}, cwd: "/" } satisfies AppContext;
    expect(firstRunLine(c)).toBe(
      "config: defaults (no --config, $DX_BATCH_CONFIG or ./dx-batch.config.json); tracker: none (the item ids alone); artifacts: /h/artifacts",
    );
  });
});

describe("retry's config", () => {
  it("is the recorded one, with redacted secrets from today's config and the flags on top", () => {
    const then = base({
      max_parallel: 3,
      providers: { "cc-glm": { command: ["cc"], env: { GLM_TOKEN: "old-secret", REGION: "eu" }, public_env: ["REGION"] } },
      notify: { command: ["notify-me"], webhook: "https://hooks.example/T0/OLD" },
    });
    const recorded = recordedConfig(then);
    expect(JSON.stringify(recorded)).not.toContain("old-secret");
    expect(JSON.stringify(recorded)).not.toContain("hooks.example");
    // Today's config: a rotated token and webhook, and a different region and parallelism that
    // the retry must not take (the recorded ones stand unless a flag says otherwise).
    const today = base({
      max_parallel: 9,
      providers: { "cc-glm": { command: ["cc"], env: { GLM_TOKEN: "new-secret", REGION: "us" }, public_env: ["REGION"] } },
      notify: { webhook: "https://hooks.example/T0/NEW" },
    });
    const r = retryConfig(recorded, today, { max_attempts: 5 }, "/work");
    expect(r.providers["cc-glm"]?.env).toEqual({ GLM_TOKEN: "new-secret", REGION: "eu" });
    expect(r.notify).toEqual({ command: ["notify-me"], webhook: "https://hooks.example/T0/NEW" });
    expect(r.max_parallel).toBe(3);
    expect(r.max_attempts).toBe(5);
    expect(retryConfig(recorded, today, { repo: "repo" }, "/work").repo).toBe("/work/repo");
  });
});
