import { describe, expect, it } from "vitest";
import { gcFunction, startHeapTrim, type GcFn } from "../../src/app/heap-trim.js";

// The controller's periodic full collection (issue #14): asked for concurrently, and stopped with the run.

describe("startHeapTrim", () => {
  it("gets V8's gc in this Node even without --expose-gc", () => {
    expect(typeof gcFunction()).toBe("function");
  });

  it("asks for a concurrent major collection on its period, and no more once stopped", async () => {
    const calls: Parameters<GcFn>[0][] = [];
    const stop = startHeapTrim(20, (o) => void calls.push(o));
    const deadline = Date.now() + 30_000;
    while (calls.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    stop();
    const n = calls.length;
    expect(n).toBeGreaterThanOrEqual(2);
    expect(calls.every((o) => o?.type === "major" && o.execution === "async")).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(calls.length).toBe(n);
  });

  it("does nothing where there is no gc", () => {
    const stop = startHeapTrim(20, null);
    expect(() => stop()).not.toThrow();
  });
});
