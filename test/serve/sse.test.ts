import { existsSync } from "node:fs";
import { expect } from "vitest";
import { readLedgerEvents } from "../../src/store/ledger.js";
import { waitFor } from "../helpers/wait.js";
import { it, serve, slowSandbox, sse, startCli, type SseEvent } from "./helpers.js";

// SSE of a running wave: a client that drops the connection several times and comes back with
// Last-Event-ID sees every ledger event exactly once, in seq order. The rescan fallback is set to a
// minute, so what arrives in time arrived through fs.watch.

it("reconnecting with Last-Event-ID misses nothing and repeats nothing", async ({ bin, tmp }) => {
  const sb = slowSandbox(tmp, 300);
  const W = "wave-sse";
  const wave = startCli(
    bin,
    ["start", "--items", "ok-1,rev-2,ok-3,blk-4", "--max-parallel", "2", "--wave-id", W, "--config", sb.configPath, "--repo", sb.repo],
    sb.root,
  );
  const srv = await serve(sb, { sse: { fallbackMs: 60_000 } });
  try {
    await waitFor(() => existsSync(sb.layout.waveLedger(W)) || null, "the wave ledger");
    const seen: SseEvent[] = [];
    let last: string | null = null;
    let done = false;
    void wave.exited.then(() => (done = true));
    // Drop the connection after every 4 events, and wait a little before coming back, so events
    // are written while nobody listens.
    let finalSeq: number | null = null;
    const caughtUp = (got: SseEvent[]): boolean => finalSeq !== null && Number(got[got.length - 1]?.id ?? last ?? 0) >= finalSeq;
    for (let round = 0; round < 200 && !(finalSeq !== null && Number(last ?? 0) >= finalSeq); round++) {
      const got: SseEvent[] = [];
      const headers: Record<string, string> = last === null ? {} : { "last-event-id": last };
      const c = sse(srv.url, `/api/waves/${W}/events`, headers, (e) => got.push(e));
      expect(await c.status).toBe(200);
      await waitFor(
        async () => {
          if (done && finalSeq === null) finalSeq = (await readLedgerEvents(sb.layout, W)).events.at(-1)?.seq ?? 0;
          return got.length >= 4 || caughtUp(got);
        },
        "4 events, or the last one",
        { timeoutMs: 20_000 },
      );
      c.close();
      seen.push(...got);
      if (got.length > 0) last = got[got.length - 1]?.id ?? last;
      await new Promise((r) => setTimeout(r, 150));
    }
    const { events } = await readLedgerEvents(sb.layout, W);
    const ids = seen.map((e) => Number(e.id));
    expect(new Set(ids).size).toBe(ids.length); // nothing twice
    expect(ids).toEqual(events.map((e) => e.seq)); // nothing missed, in order
    expect(seen.map((e) => JSON.parse(e.data) as unknown)).toEqual(events.map((e) => JSON.parse(JSON.stringify(e)) as unknown));
    expect(ids.length).toBeGreaterThan(20);
  } finally {
    await srv.close();
  }
}, 150_000);
