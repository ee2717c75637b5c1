import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Type, type TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { describe, expect, it } from "vitest";
import type { EventName, WaveEvent } from "../../src/core/events.js";
import * as checks from "../../src/store/checks.generated.js";
import { eventCheckName, STORE_CHECKS_FILE, storeChecksModule } from "../../src/store/checks-source.js";
import { parseControllerLock } from "../../src/store/controller-lock.js";
import { EVENT_NAMES, parseWaveEvent, parseWaveState, type Parsed } from "../../src/store/schema.js";
import { storeShapes } from "../../src/store/shapes.js";
import { Ledger, implContract, reviewContract } from "../helpers/events.js";

// The store's checks are TypeBox code precompiled (src/store/checks.generated.ts) so that reading a
// wave does not load TypeBox (issue #14). They must stay what src/store/shapes.ts and the installed
// TypeBox produce, and accept, refuse and word refusals exactly as the checks TypeBox compiled at
// module load did before. If the first test fails, run `npm run build && node scripts/gen-schemas.mjs`.

const root = join(import.meta.dirname, "..", "..");
const shapes = storeShapes(Type);
const compiled = new Map<TSchema, TypeCheck<TSchema>>();
const compile = (s: TSchema): TypeCheck<TSchema> => {
  let c = compiled.get(s);
  if (c === undefined) compiled.set(s, (c = TypeCompiler.Compile(s)));
  return c;
};

/** What src/store/schema.ts did before: a TypeCheck compiled at load, its first error on refusal. */
function before<T>(schema: TSchema, v: unknown): Parsed<T> {
  const c = compile(schema);
  if (c.Check(v)) return { ok: true, value: v as T };
  const first = c.Errors(v).First();
  const where = first === undefined || first.path === "" ? "(root)" : first.path;
  return { ok: false, detail: `${where}: ${first?.message ?? "does not match"}` };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
function beforeEvent(v: unknown): Parsed<WaveEvent> {
  if (!isRecord(v)) return { ok: false, detail: "not a JSON object" };
  const name = v.event;
  if (typeof name !== "string") return { ok: false, detail: "/event: missing or not a string" };
  if (!Object.hasOwn(shapes.events, name)) return { ok: false, detail: `/event: unknown event ${JSON.stringify(name.slice(0, 60))}` };
  const seq = v.seq;
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1) return { ok: false, detail: "/seq: not a positive integer" };
  return before(shapes.events[name as EventName], v);
}

// ---- samples ----------------------------------------------------------------------------------------

const jsonl = (file: string): unknown[] =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as unknown);

const FIXTURES = join(root, "test", "fixtures", "ledgers");
const recorded = readdirSync(FIXTURES, { withFileTypes: true }).filter((d) => d.isDirectory());
const recordedEvents = recorded.flatMap((d) => {
  const dir = join(FIXTURES, d.name);
  return [join(dir, "wave.ledger.jsonl"), ...readdirSync(join(dir, "items")).map((f) => join(dir, "items", f))].flatMap(jsonl);
});
const recordedStates = recorded.map((d) => JSON.parse(readFileSync(join(FIXTURES, d.name, "wave_state.json"), "utf8")) as unknown);

// Every event kind, with the optional fields present and absent.
const built = new Ledger({ items: ["bd-a1", "bd-b2", { id: "bd-c3", title: "c", depends_on: ["bd-a1"] }] })
  .preflight({ opencode: true, "cc-glm": "provider_quota_exhausted" })
  .start()
  .implement("bd-a1", "opencode", { contract: implContract("bd-a1", "completed", { findings: [{ type: "minor", message: "m", line: 2 }] }) })
  .review("bd-a1", "cc-glm", "REVISION_REQUIRED")
  .implement("bd-a1", "opencode", "completed")
  .review("bd-a1", "cc-glm", { contract: reviewContract("bd-a1", "APPROVED") })
  .dispatch("bd-b2", "implement", "opencode")
  .jobStarted("bd-b2")
  .attemptFailed("bd-b2", "stalled")
  .settled("bd-b2", "blocked", "retry_chain_exhausted")
  .trackerError("bd-c3", "comment")
  .pause()
  .resume()
  .cancel().events;
const at = "2026-01-01T01:00:00.000Z";
const handWritten: unknown[] = [
  { seq: 90, at, epoch: 2, event: "controller_acquired", pid: 7, host: "h" },
  { seq: 91, at, event: "auto_commit", item_id: "bd-a1", phase: "implement", attempt: 1, provider: "p", run_instance: "r", sha: "abc", files: ["a"] },
  { seq: 92, at, event: "wave_completed", reason_code: "wave_completed", approved: 1, not_approved: 2 },
  { seq: 93, at, event: "wave_notified", state: "completed", results: [{ channel: "webhook", ok: false, error: "500", attempts: 3 }] },
  {
    seq: 94,
    at,
    event: "item_delivered",
    item_id: "bd-a1",
    remote: "origin",
    branch: "dx/bd-a1",
    head: null,
    pushed: true,
    pr_url: null,
    error: null,
    reason_code: "pr_pushed",
  },
  { seq: 95, at, event: "ledger_foreign_bytes", file: "f", moved_to: "g", bytes: 12 },
  { seq: 96, at, event: "wave_failed", reason_code: "x", error: "e" },
];
const validEvents: unknown[] = [...recordedEvents, ...built, ...handWritten];

const lock = { pid: 12, start_time: "99", host: "h", started_at: at, heartbeat_at: at, epoch: 3, token: "t" };
const ticket = { pid: 12, start_time: null, host: "h", at_ms: 1767229200000, withdrawn: false };

/** Paths of every value in `v`, root first. */
function paths(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (isRecord(v)) for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

/** At most `limit` of them, spread evenly over the document (a snapshot has thousands). */
function spread<T>(all: T[], limit: number): T[] {
  if (all.length <= limit) return all;
  return Array.from({ length: limit }, (_, i) => all[Math.floor((i * all.length) / limit)] as T);
}

const REPLACEMENTS: unknown[] = [null, 0, -1, 1.5, "x", "", true, [], {}, [1], { a: 1 }];
const sentinel = Symbol("remove");

/** `v` with the value at `path` replaced (or removed). */
function mutate(v: unknown, path: (string | number)[], by: unknown): unknown {
  if (path.length === 0) return by;
  const copy = structuredClone(v) as Record<string | number, unknown>;
  let parent = copy;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (by === sentinel) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else parent[last] = by;
  return copy;
}

/** `v` itself, one unknown key added, and each of its values (up to `limit`) removed or given another type. */
function variants(v: unknown, limit = 200): unknown[] {
  const out: unknown[] = [v];
  if (isRecord(v)) out.push({ ...v, unknown_key: 1 });
  for (const p of spread(paths(v), limit)) {
    if (p.length > 0) out.push(mutate(v, p, sentinel));
    for (const r of REPLACEMENTS) out.push(mutate(v, p, r));
  }
  return out;
}

describe("precompiled store checks", () => {
  it(`${STORE_CHECKS_FILE} equals what src/store/shapes.ts and the installed TypeBox produce`, () => {
    expect(readFileSync(join(root, STORE_CHECKS_FILE), "utf8")).toBe(storeChecksModule());
  });

  it("has one check per event of the core, and EVENT_NAMES names them", () => {
    expect([...EVENT_NAMES].sort()).toEqual(Object.keys(shapes.events).sort());
    for (const e of EVENT_NAMES) expect(typeof (checks as Record<string, unknown>)[eventCheckName(e)], e).toBe("function");
  });

  it("the samples are what they claim: every recorded and built event is valid, every kind is there", () => {
    for (const e of validEvents) expect(parseWaveEvent(e), JSON.stringify(e)).toMatchObject({ ok: true });
    const kinds = new Set(validEvents.map((e) => (e as { event: string }).event));
    expect([...kinds].sort()).toEqual([...EVENT_NAMES].sort());
    for (const s of recordedStates) expect(parseWaveState(s)).toMatchObject({ ok: true });
  });

  it("ledger events: accepted and refused as before, with the same words", () => {
    // Differences are collected and compared once: an expect per sample is most of the time.
    const differ: string[] = [];
    let refused = 0;
    for (const e of validEvents) {
      for (const v of variants(e)) {
        const want = beforeEvent(v);
        if (JSON.stringify(parseWaveEvent(v)) !== JSON.stringify(want)) differ.push(`parse: ${JSON.stringify(v)}`);
        if (!want.ok) refused += 1;
        // Each event's check on its own, against every sample: not only the one its name picks.
        for (const name of EVENT_NAMES) {
          const check = (checks as Record<string, (x: unknown) => boolean>)[eventCheckName(name)] as (x: unknown) => boolean;
          if (check(v) !== compile(shapes.events[name]).Check(v)) differ.push(`${name}: ${JSON.stringify(v)}`);
        }
      }
    }
    expect(differ).toEqual([]);
    expect(refused).toBeGreaterThan(1000);
  });

  it("wave snapshots: accepted and refused as before, with the same words", () => {
    for (const s of recordedStates) {
      const differ = variants(s, 120).filter((v) => JSON.stringify(parseWaveState(v)) !== JSON.stringify(before(shapes.waveState, v)));
      expect(differ).toEqual([]);
    }
  });

  it("controller lock files and exclusive-create tickets: accepted and refused as before", () => {
    for (const v of [...variants(lock), ...variants({ ...lock, epoch: undefined }), null, "x", [], 1]) {
      const want = compile(shapes.controllerLock).Check(v);
      expect(checks.isControllerLockFile(v), JSON.stringify(v)).toBe(want);
      // Absent epoch (a lock from before epochs) reads as 0.
      if (want) expect(parseControllerLock(JSON.stringify(v))?.epoch).toBe((v as { epoch?: number }).epoch ?? 0);
      else expect(parseControllerLock(JSON.stringify(v))).toBeNull();
    }
    for (const v of [...variants(ticket), { ...ticket, start_time: "1", withdrawn: true }, null, "x", []]) {
      expect(checks.isTicket(v), JSON.stringify(v)).toBe(compile(shapes.ticket).Check(v));
    }
    expect(checks.isControllerLockFile({ ...lock, epoch: -1 })).toBe(false);
    expect(checks.isControllerLockFile({ ...lock, pid: 1.5 })).toBe(false);
    expect(checks.isTicket({ ...ticket, at_ms: "1" })).toBe(false);
  });

  it("words a refusal as TypeBox does: path, then message", () => {
    const created = built[0] as unknown as Record<string, unknown>;
    expect(parseWaveEvent({ ...created, wave_id: 3 })).toEqual({ ok: false, detail: "/wave_id: Expected string" });
    expect(parseWaveEvent({ seq: 1, at, event: "wave_paused" })).toEqual({ ok: false, detail: "/reason_code: Expected required property" });
    expect(parseWaveState([])).toEqual({ ok: false, detail: "(root): Expected object" });
  });
});
