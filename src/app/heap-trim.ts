import v8 from "node:v8";
import { runInNewContext } from "node:vm";

// A controller allocates a steady stream of short-lived objects (an event, a state, the job's file
// texts) and keeps little: its live heap is some 20 MB at 3,000 items. V8 still lets the old
// generation fill with what survived a scavenge or two before its first full collection, which on
// a busy controller came 40 s into a 10,000-item wave with 60 MB of old space, most of it dead.
// The resident size follows the high-water mark. A full collection every few seconds, started
// concurrently (V8 marks on its helper threads; the loop pauses only to finish), keeps the old
// generation near the live size, so the resident size follows what the wave holds instead of
// what it threw away (issue #14: 10,000 items peaked at 162 MB without it, 145 MB with it and
// snapshots written through one buffer, store/fsx.ts).

/** How often the controller asks for a full collection. */
export const HEAP_TRIM_EVERY_MS = 5_000;

export type GcFn = (o?: { type?: "major" | "minor"; execution?: "sync" | "async" }) => void | Promise<void>;

/** V8's gc(), exposed now if it was not: null where it cannot be. */
export function gcFunction(): GcFn | null {
  const g = (globalThis as { gc?: GcFn }).gc;
  if (typeof g === "function") return g;
  try {
    // --expose-gc set now defines `gc` in contexts made from here on: one is made to take it.
    v8.setFlagsFromString("--expose-gc");
    const fn = runInNewContext("gc") as unknown;
    return typeof fn === "function" ? (fn as GcFn) : null;
  } catch {
    return null;
  }
}

/** Start the periodic collection; returns its stop. Where V8 will not expose gc, nothing happens. */
export function startHeapTrim(everyMs: number = HEAP_TRIM_EVERY_MS, gc: GcFn | null = gcFunction()): () => void {
  if (gc === null) return () => undefined;
  const t = setInterval(() => {
    try {
      void gc({ type: "major", execution: "async" });
    } catch {
      // a V8 without the options form: skip rather than block the loop with a synchronous one
    }
  }, everyMs);
  t.unref();
  return () => clearInterval(t);
}
