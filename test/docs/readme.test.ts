import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

// The README's configuration reference is generated from the schema; this fails when they drift.
describe("README", () => {
  it("holds the configuration reference generated from the config schema", () => {
    expect(() => execFileSync(process.execPath, ["scripts/gen-docs.mjs", "--check"], { stdio: "pipe" })).not.toThrow();
  });

  it("starts with the two commands of a fresh machine", () => {
    const text = readFileSync("README.md", "utf8");
    const first = text.indexOf("npm ci && npm run demo");
    expect(first).toBeGreaterThan(0);
    expect(text.indexOf("npm test")).toBeGreaterThan(first);
    expect(first).toBeLessThan(1200);
  });
});
