import type { TrackerReason } from "../core/reasons.js";
import type { TrackerPort, TrackerWrite } from "../tracker/port.js";

// Tracker calls run one at a time behind the loop, so a slow `bd` never delays a dispatch, and a
// failure is reported back as a recorded event instead of failing the wave (SPEC §10).

type Op = "in_progress" | "comment" | "close";
type OnError = (itemId: string, op: Op, reasonCode: TrackerReason, detail: string) => void;

export class TrackerQueue {
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly tracker: TrackerPort,
    private readonly onError: OnError,
  ) {}

  markInProgress(id: string): void {
    this.enqueue(id, "in_progress", () => this.tracker.markInProgress(id));
  }

  comment(id: string, text: string): void {
    this.enqueue(id, "comment", () => this.tracker.comment(id, text));
  }

  close(id: string, reason: string): void {
    this.enqueue(id, "close", () => this.tracker.close(id, reason));
  }

  drain(): Promise<void> {
    return this.tail;
  }

  private enqueue(id: string, op: Op, call: () => Promise<TrackerWrite>): void {
    if (this.tracker.type === "none") return;
    this.tail = this.tail.then(async () => {
      try {
        const r = await call();
        if (!r.ok) this.onError(id, op, r.reason_code ?? "tracker_command_failed", r.detail ?? `${op} failed`);
      } catch (err) {
        this.onError(id, op, "tracker_command_failed", err instanceof Error ? err.message : String(err));
      }
    });
  }
}
