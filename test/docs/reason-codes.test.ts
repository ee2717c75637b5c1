import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DeliveryReason, ItemReason, RunnerReason, TrackerReason, WaveReason } from "../../src/core/reasons.js";
import { ERRORS } from "../../src/errors.js";

// Issue #13: the README's tables name every reason and error code the code can produce. The list
// comes from the code (src/core/reasons.ts, the error table in src/errors.ts), so a new code
// without a line in the README fails here.

const codes = (o: Record<string, string>): string[] => Object.values(o);

describe("README reason codes", () => {
  it("lists every reason code and error code", () => {
    const readme = readFileSync("README.md", "utf8");
    const all = new Set([
      ...codes(WaveReason),
      ...codes(ItemReason),
      ...codes(RunnerReason),
      ...codes(TrackerReason),
      ...codes(DeliveryReason),
      ...Object.keys(ERRORS),
    ]);
    const missing = [...all].filter((c) => !readme.includes(`\`${c}\``)).sort();
    expect(missing, `add these codes to the README's reason code tables: ${missing.join(", ")}`).toEqual([]);
  });
});
