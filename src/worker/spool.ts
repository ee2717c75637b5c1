import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { parseJson, parseResult, type QueueResult } from "../queue/protocol.js";
import { replaceFileLater } from "../store/sync-later.js";

// A worker keeps every result it produced on its own disk until the controller acknowledges it:
// Redis may be down when the agent ends, or restart without the last writes, and a produced
// result must never be lost. Written whole (tmp + fsync + rename) before it is published, with
// the fsyncs off the event loop: that loop also renews the locks of the worker's other jobs, and
// a slow disk must not cost them their locks.

const RUN = /^[A-Za-z0-9_.:-]{1,128}$/;

export function createSpool(dir: string) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = (runInstance: string): string => {
    if (!RUN.test(runInstance)) throw new Error(`invalid run_instance ${JSON.stringify(runInstance)}`);
    return path.join(dir, `${runInstance}.result.json`);
  };
  return {
    dir,
    async put(r: QueueResult): Promise<void> {
      // It gets the name list() reads only once its content is on disk.
      await replaceFileLater(file(r.run_instance), JSON.stringify(r));
    },
    drop(runInstance: string): void {
      rmSync(file(runInstance), { force: true });
    },
    list(): QueueResult[] {
      let names: string[] = [];
      try {
        names = readdirSync(dir).filter((n) => n.endsWith(".result.json"));
      } catch {
        return [];
      }
      const out: QueueResult[] = [];
      for (const n of names.sort()) {
        try {
          const r = parseResult(parseJson(readFileSync(path.join(dir, n), "utf8")));
          if (r !== null) out.push(r);
        } catch {
          // Removed meanwhile.
        }
      }
      return out;
    },
    /** Results nobody acknowledged for this long belong to waves that are long gone (and a crash's temp files). */
    dropOlderThan(ms: number, now = Date.now()): void {
      for (const n of safeList(dir, true)) {
        const p = path.join(dir, n);
        try {
          if (now - statSync(p).mtimeMs > ms) rmSync(p, { force: true });
        } catch {
          // Gone already.
        }
      }
    },
  };
}

function safeList(dir: string, withTemp = false): string[] {
  try {
    return readdirSync(dir).filter((n) => n.endsWith(".result.json") || (withTemp && n.includes(".result.json.tmp-")));
  } catch {
    return [];
  }
}

export type Spool = ReturnType<typeof createSpool>;
