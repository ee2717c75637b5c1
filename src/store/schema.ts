import { createRequire } from "node:module";
import type { TSchema } from "@sinclair/typebox";
import type { EventName, WaveEvent } from "../core/events.js";
import type { WaveState } from "../core/state.js";
import * as checks from "./checks.generated.js";
import { storeShapes, type StoreShapes } from "./shapes.js";

// What the store reads back from disk, checked at the boundary (SPEC §5: a bad line stops the
// load): ledger lines and the wave snapshot. The schemas are in shapes.ts; the checks that run are
// their TypeBox code precompiled (checks.generated.ts), so reading a wave does not load TypeBox.
// It is loaded when a value is refused, to say why in TypeBox's words, as before.

export type Parsed<T> = { ok: true; value: T } | { ok: false; detail: string };

type EventOf<K extends EventName> = Extract<WaveEvent, { event: K }>;
type Guard<T> = (v: unknown) => v is T;

// The schema's values are the core's values (asserted in shapes.ts): each guard narrows to its event.
const EVENT_CHECKS: { [K in EventName]: Guard<EventOf<K>> } = {
  wave_created: checks.isWaveCreated,
  preflight_recorded: checks.isPreflightRecorded,
  wave_started: checks.isWaveStarted,
  wave_resumed: checks.isWaveResumed,
  controller_acquired: checks.isControllerAcquired,
  wave_paused: checks.isWavePaused,
  wave_failed: checks.isWaveFailed,
  wave_cancelled: checks.isWaveCancelled,
  wave_completed: checks.isWaveCompleted,
  wave_notified: checks.isWaveNotified,
  item_dispatched: checks.isItemDispatched,
  job_started: checks.isJobStarted,
  auto_commit: checks.isAutoCommit,
  job_finished: checks.isJobFinished,
  attempt_failed: checks.isAttemptFailed,
  item_settled: checks.isItemSettled,
  tracker_error: checks.isTrackerError,
  item_delivered: checks.isItemDelivered,
  ledger_foreign_bytes: checks.isLedgerForeignBytes,
};

export const EVENT_NAMES: readonly EventName[] = Object.keys(EVENT_CHECKS).filter(isEventName);

function isEventName(s: string): s is EventName {
  return Object.prototype.hasOwnProperty.call(EVENT_CHECKS, s);
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** A ledger line's JSON value checked as a WaveEvent: seq, at, a known event name and its fields. */
export function parseWaveEvent(v: unknown): Parsed<WaveEvent> {
  if (!isRecord(v)) return { ok: false, detail: "not a JSON object" };
  const name = v.event;
  if (typeof name !== "string") return { ok: false, detail: "/event: missing or not a string" };
  if (!isEventName(name)) return { ok: false, detail: `/event: unknown event ${JSON.stringify(name.slice(0, 60))}` };
  const seq = v.seq;
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1) return { ok: false, detail: "/seq: not a positive integer" };
  const check: Guard<WaveEvent> = EVENT_CHECKS[name];
  return check(v) ? { ok: true, value: v } : { ok: false, detail: refusal((s) => s.events[name], v) };
}

/** A snapshot's JSON value checked as a WaveState (every field the core reads, with its type). */
export function parseWaveState(v: unknown): Parsed<WaveState> {
  return checks.isWaveState(v) ? { ok: true, value: v } : { ok: false, detail: refusal((s) => s.waveState, v) };
}

// ---- why a value was refused ----------------------------------------------------------------------

// TypeBox is loaded here only, on the first refusal, and synchronously: ledger and snapshot reads
// are synchronous. Its CommonJS build can be `require`d where its ES build cannot; the schemas it
// builds are the same (TypeBox marks them with registered symbols, the same in both builds).
const requireCjs = createRequire(import.meta.url);
let shapes: StoreShapes | undefined;

/** TypeBox's first error of a refused value: exactly what a compiled TypeCheck's Errors() gives. */
export function firstShapeError(pick: (s: StoreShapes) => TSchema, v: unknown): { path: string; message: string } | undefined {
  const { Type } = requireCjs("@sinclair/typebox") as typeof import("@sinclair/typebox");
  const { Errors } = requireCjs("@sinclair/typebox/errors") as typeof import("@sinclair/typebox/errors");
  shapes ??= storeShapes(Type);
  return Errors(pick(shapes), [], v).First();
}

/** `<path>: <message>` of the first error. */
function refusal(pick: (s: StoreShapes) => TSchema, v: unknown): string {
  const first = firstShapeError(pick, v);
  const where = first === undefined || first.path === "" ? "(root)" : first.path;
  return `${where}: ${first?.message ?? "does not match"}`;
}
