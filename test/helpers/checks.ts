import type { WaveEvent } from "../../src/core/events.js";
import type { AgentRun } from "./world.js";

// Ledger and agent-run invariants shared by the process-level tests.

export type Dispatch = Extract<WaveEvent, { event: "item_dispatched" }>;
export type Finished = Extract<WaveEvent, { event: "job_finished" }>;

export const dispatches = (events: readonly WaveEvent[]): Dispatch[] => events.filter((e): e is Dispatch => e.event === "item_dispatched");
export const finishes = (events: readonly WaveEvent[]): Finished[] => events.filter((e): e is Finished => e.event === "job_finished");

/** Every (item, phase, attempt) dispatched at most once; no finished attempt dispatched again. */
export function duplicateDispatches(events: readonly WaveEvent[]): string[] {
  const seen = new Map<string, number>();
  const finished = new Set<string>();
  const problems: string[] = [];
  for (const e of events) {
    if (e.event === "item_dispatched") {
      const k = `${e.item_id}/${e.phase}/${e.attempt}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
      if ((seen.get(k) ?? 0) > 1) problems.push(`${k} dispatched twice (seq ${e.seq})`);
      if (finished.has(k)) problems.push(`${k} dispatched again after it finished (seq ${e.seq})`);
    }
    if (e.event === "job_finished") finished.add(`${e.item_id}/${e.phase}/${e.attempt}`);
  }
  return problems;
}

/** Every agent run (item, phase, attempt) started at most once. */
export function duplicateRuns(runs: readonly AgentRun[], wave?: string): string[] {
  const seen = new Map<string, number>();
  for (const r of runs) {
    if (r.event !== "start" || (wave !== undefined && r.wave !== wave)) continue;
    const k = `${r.item}/${r.phase}/${r.attempt}`;
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([k, n]) => `${k} ran ${n} times`);
}

/** Agent runs that started while an earlier run of the same item (or its grandchild) was alive. */
export function racingRuns(runs: readonly AgentRun[]): string[] {
  return runs
    .filter((r) => r.event === "start" && (r.alive_peers?.length ?? 0) > 0)
    .map((r) => `${r.item}/${r.phase}/${r.attempt} started while pid(s) ${(r.alive_peers ?? []).join(",")} of the same item were alive`);
}
