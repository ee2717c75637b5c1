import type { TrackerReason } from "../core/reasons.js";

// The tracker port (SPEC §10): beads, file, none.

export interface TrackerIssue {
  id: string;
  title: string;
  description: string;
  acceptance_criteria: string;
  status: string;
  labels: string[];
  /** Ids this issue depends on through `blocks` dependencies. */
  blocked_by: string[];
}

export type ShowResult = { found: true; issue: TrackerIssue } | { found: false; reason_code: TrackerReason; detail: string };

export interface TrackerPort {
  readonly type: "beads" | "file" | "none";
  show(id: string): Promise<ShowResult>;
  ready(opts: { limit?: number; label?: string }): Promise<TrackerIssue[]>;
  /** Failures are reported, never thrown: a tracker failure never fails the wave (SPEC §10). */
  markInProgress(id: string): Promise<TrackerWrite>;
  comment(id: string, text: string): Promise<TrackerWrite>;
  close(id: string, reason: string): Promise<TrackerWrite>;
  /** Doctor: tracker binary in policy (beads: `bd --version` at least the minimum). */
  versionCheck(): Promise<TrackerWrite & { detail: string }>;
}

/** A tracker write's answer; reason_code is set on failure (and on a deliberate no-op such as tracker_close_disabled). */
export interface TrackerWrite {
  ok: boolean;
  reason_code: TrackerReason | null;
  /** On failure, the tracker's own words (bd's error message, whole). */
  detail?: string;
}
