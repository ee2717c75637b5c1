import { afterEach, describe, expect, it } from "vitest";
import { Cluster, cleanupClusters, waitFor } from "./cluster.js";

// Issue #13: `dx-batch logs` for a job that ran on a remote `dx-batch worker`. The whole log stays
// on the worker's host; the tail that comes back with the result is what `logs` prints, and
// `--follow` on a running remote job waits for that tail.

const T = 180_000;
afterEach(cleanupClusters);

describe("dx-batch logs of a remote worker's job", () => {
  it(
    "--follow waits for the running job's result and prints its tail; afterwards logs prints it from the wave",
    async () => {
      const c = await Cluster.create({
        items: ["rl-1"],
        scenario: { items: { "rl-1": { implement: { gate: "rl" } } } },
        config: { require_review: false },
      });
      const h1 = c.startWorker("h1");
      await c.workerReady(h1);
      const start = c.cli(["start", "--config", c.configPath, "--items", "rl-1", "--wave-id", "w-rl"]);
      await waitFor(() => c.ledger("w-rl").some((e) => e.event === "job_started"), { what: "the remote job to start", timeoutMs: 60_000 });

      const follow = c.cli(["logs", "rl-1", "--config", c.configPath, "--follow"]);
      await waitFor(() => follow.err().includes("waiting for the attempt to end on its worker"), { what: "logs --follow to wait", timeoutMs: 30_000 });
      expect(follow.err()).toMatch(/logs: rl-1 implement attempt 1 on agent-a \(running\): on a remote worker \(redis:/);
      c.gate("rl");
      const f = await follow.done;
      expect(f.code, follow.err()).toBe(0);
      expect(follow.out()).toContain("[agent-a] implement rl-1 attempt 1 done");
      expect(follow.err()).toContain("logs: rl-1 implement attempt 1 ended");
      expect((await start.done).code, start.err()).toBe(0);

      // After the wave: the tail kept with the wave, the whole log's place on the worker named.
      const r = await c.run("logs", ["rl-1", "--wave-id", "w-rl"]);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain("[agent-a] implement rl-1 attempt 1 done");
      expect(r.err).toMatch(/on a remote worker \(h1:\/.*\); its last 64 KiB, from the result: .*w-rl\/logs\/.*\.remote-tail\.log$/m);
    },
    T,
  );
});
