import { describe, expect, it } from "vitest";
import { fold } from "../../src/core/step.js";
import { Ledger, seed } from "../helpers/events.js";

// Items that can never have their dependencies approved end blocked when the wave is created, so
// the wave can still complete; the rest of the wave is untouched.
describe("dependency cycles", () => {
  it("blocks the items of a cycle and the items waiting on it, and nothing else", () => {
    const l = new Ledger({
      items: [
        seed("cy-a", ["cy-b"]),
        seed("cy-b", ["cy-c"]),
        seed("cy-c", ["cy-a"]),
        seed("cy-d", ["cy-a"]),
        seed("cy-e", ["cy-d"]),
        seed("ok-1"),
        seed("ok-2", ["ok-1"]),
      ],
    });
    const s = fold(l.events);
    const by = Object.fromEntries(s.items.map((i) => [i.beads_id, `${i.status}:${i.reason_code}`]));
    expect(by).toEqual({
      "cy-a": "blocked:dependency_cycle",
      "cy-b": "blocked:dependency_cycle",
      "cy-c": "blocked:dependency_cycle",
      "cy-d": "blocked:dependency_blocked:cy-a",
      "cy-e": "blocked:dependency_blocked:cy-d",
      "ok-1": "pending:pending",
      "ok-2": "pending:pending",
    });
    expect(s.stats).toMatchObject({ total: 7, blocked: 5, pending: 2 });
  });

  it("handles a self-loop-free chain of 10,000 items without quadratic cost", () => {
    const items = Array.from({ length: 10_000 }, (_, i) => seed(`ch-${i}`, i === 0 ? [] : [`ch-${i - 1}`]));
    const s = fold(new Ledger({ items }).events);
    expect(s.stats.pending).toBe(10_000);
  });
});
