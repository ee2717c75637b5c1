import { watch, type FSWatcher } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Layout } from "../store/layout.js";
import { badRequest } from "./http-error.js";
import { LedgerTail } from "./ledger-tail.js";

// GET /api/waves/:id/events: the wave's ledger events as Server-Sent Events, `id:` = ledger seq.
// A client that reconnects with Last-Event-ID gets every event after that seq, once. New lines are
// noticed through fs.watch on the two ledger directories; a slow timer rescans in case a watch
// event is lost (or fs.watch is unavailable, as on some network filesystems). Never a tight poll.

export interface SseOptions {
  /** Rescan period without any watch event. */
  fallbackMs?: number;
  /** Comment line sent this often so proxies keep the connection open. */
  keepAliveMs?: number;
  /** Coalesce a burst of watch events into one read. */
  debounceMs?: number;
}

export function lastEventId(req: IncomingMessage, q: URLSearchParams): number {
  const h = req.headers["last-event-id"];
  const raw = (Array.isArray(h) ? h[0] : h) ?? q.get("since") ?? "0";
  if (!/^[0-9]{1,15}$/.test(raw.trim())) throw badRequest("invalid_last_event_id", "Last-Event-ID must be a ledger seq (a non-negative integer)");
  return Number(raw.trim());
}

export function streamEvents(layout: Layout, waveId: string, afterSeq: number, req: IncomingMessage, res: ServerResponse, o: SseOptions = {}): void {
  const tail = new LedgerTail(layout, waveId, { afterSeq });
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  res.write("retry: 1000\n\n");
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  const flush = (): void => {
    timer = null;
    if (closed) return;
    let events;
    try {
      events = tail.read();
    } catch {
      return; // a file vanished mid-read: the next event or rescan tries again
    }
    for (const e of events) res.write(`id: ${e.seq}\ndata: ${e.line}\n\n`);
    // A gap is waiting for its missing seq: look again shortly, not at the slow rescan.
    if (tail.waiting) schedule(100);
  };
  const schedule = (ms: number): void => {
    if (timer === null && !closed) timer = setTimeout(flush, ms);
  };
  const watchDir = (dir: string): void => {
    try {
      const w = watch(dir, { persistent: false }, () => schedule(o.debounceMs ?? 15));
      w.on("error", () => undefined);
      watchers.push(w);
    } catch {
      // not there (yet): the rescan covers it
    }
  };
  watchDir(layout.waveDir(waveId));
  watchDir(layout.itemLedgersDir(waveId));
  const fallback = setInterval(() => {
    if (watchers.length < 2) {
      // the item ledger dir may have appeared since
      for (const w of watchers.splice(0)) w.close();
      watchDir(layout.waveDir(waveId));
      watchDir(layout.itemLedgersDir(waveId));
    }
    schedule(0);
  }, o.fallbackMs ?? 5000);
  const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), o.keepAliveMs ?? 15000);
  const close = (): void => {
    if (closed) return;
    closed = true;
    clearInterval(fallback);
    clearInterval(keepAlive);
    if (timer !== null) clearTimeout(timer);
    for (const w of watchers) w.close();
  };
  req.on("close", close);
  res.on("close", close);
  flush();
}
