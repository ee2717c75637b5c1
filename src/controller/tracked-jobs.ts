import type { RunnerReason } from "../core/reasons.js";
import type { Phase } from "../core/status.js";
import type { JobRef } from "../runner/port.js";

// The jobs this controller watches, keyed by run_instance. `own` jobs were launched by this
// process and report their exit through the runner's exit event; re-attached ones are polled.

export interface TrackedJob {
  ref: JobRef;
  item_id: string;
  phase: Phase;
  attempt: number;
  provider: string;
  started_at: string | null;
  pid: number | null;
  own: boolean;
  next_check_ms: number;
  /** When the runner's full health check is next due (the stream is read more often). */
  next_health_ms?: number;
  /** Why the controller stopped the job itself (quota retries, budget): the finish records it. */
  stop_reason?: RunnerReason;
  stop_detail?: string;
}

export class TrackedJobs {
  private readonly byRun = new Map<string, TrackedJob>();
  private readonly exited = new Set<string>();

  add(job: TrackedJob): void {
    this.byRun.set(job.ref.run_instance, job);
  }

  remove(runInstance: string): void {
    this.byRun.delete(runInstance);
    this.exited.delete(runInstance);
  }

  get(runInstance: string): TrackedJob | undefined {
    return this.byRun.get(runInstance);
  }

  markExited(runInstance: string): boolean {
    if (!this.byRun.has(runInstance)) return false;
    this.exited.add(runInstance);
    return true;
  }

  takeExited(): TrackedJob[] {
    const out: TrackedJob[] = [];
    for (const r of this.exited) {
      const j = this.byRun.get(r);
      if (j) out.push(j);
    }
    this.exited.clear();
    return out;
  }

  dueForCheck(nowMs: number): TrackedJob[] {
    return [...this.byRun.values()].filter((j) => j.next_check_ms <= nowMs);
  }

  nextCheckMs(): number | null {
    let min: number | null = null;
    for (const j of this.byRun.values()) if (min === null || j.next_check_ms < min) min = j.next_check_ms;
    return min;
  }

  all(): TrackedJob[] {
    return [...this.byRun.values()];
  }

  get size(): number {
    return this.byRun.size;
  }
}
