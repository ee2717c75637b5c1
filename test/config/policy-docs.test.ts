import { describe, expect, it } from "vitest";
import { renderConfigReference } from "../../src/config/docs.js";
import { toPolicy } from "../../src/config/policy.js";
import { ConfigFileSchema, configDocument } from "../../src/config/schema.js";
import { loadConfig } from "../../src/config/load.js";

describe("toPolicy", () => {
  it("takes the state machine's keys and the per-provider caps", () => {
    const { config } = loadConfig({ flags: { max_parallel: 5, require_review: false }, cwd: "/", env: {} });
    config.providers = { opencode: { max_parallel: 2 }, mine: { command: ["x"] } };
    config.review_provider = "codex";
    expect(toPolicy(config)).toEqual({
      max_parallel: 5,
      max_attempts: 3,
      require_review: false,
      retry_chain: ["opencode", "cc-glm", "blocked"],
      review_provider: "codex",
      review_must_differ: false,
      provider_cooldown_minutes: 15,
      provider_max_parallel: { opencode: 2 },
      max_quota_waits: 3,
    });
  });
});

describe("config schema documentation", () => {
  it("has a description on every key at every level", () => {
    const missing: string[] = [];
    const visit = (node: unknown, path: string): void => {
      if (Array.isArray(node)) return node.forEach((n, i) => visit(n, `${path}/${i}`));
      if (typeof node !== "object" || node === null) return;
      const o = node as Record<string, unknown>;
      if (typeof o.properties === "object" && o.properties !== null) {
        for (const [k, v] of Object.entries(o.properties)) {
          if (typeof (v as Record<string, unknown>).description !== "string") missing.push(`${path}/${k}`);
        }
      }
      for (const [k, v] of Object.entries(o)) visit(v, `${path}/${k}`);
    };
    visit(configDocument(), "");
    expect(missing).toEqual([]);
  });

  it("renders a markdown table that mentions every top-level key, with its default", () => {
    const md = renderConfigReference();
    const lines = md.trimEnd().split("\n");
    expect(lines[0]).toBe("| key | type | default | description |");
    for (const key of Object.keys(ConfigFileSchema.properties)) {
      if (key === "$schema") continue;
      expect(md).toContain(`| \`${key}\` |`);
    }
    expect(md).toContain("| `max_parallel` | integer >= 1 | `3` |");
    expect(md).toContain('| `retry_chain` | string[] (non-empty) | `["opencode","cc-glm","blocked"]` |');
    expect(md).toContain('| `providers.<name>.stdin` | "prompt" \\| "none" |');
    expect(md).toContain("| `runner.command` |");
    expect(md).toContain("| `tracker.path` |");
    expect(md).toContain('`{"type":"beads"}` if `bd` is on PATH');
    // Every row has exactly four cells (escaped pipes do not count).
    for (const line of lines) expect(line.replace(/\\\|/g, "").split("|").length).toBe(6);
  });
});
