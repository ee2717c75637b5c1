import { DxError } from "../errors.js";
import type { ShowResult, TrackerIssue, TrackerPort, TrackerWrite } from "./port.js";

// No tracker (SPEC §10): an item is its id alone. Nothing can be listed, so `--ready` is refused
// rather than answered with an empty wave.

const ok = (): Promise<TrackerWrite> => Promise.resolve({ ok: true, reason_code: null });

export function createNoneTracker(): TrackerPort {
  return {
    type: "none",
    show(id: string): Promise<ShowResult> {
      return Promise.resolve({
        found: true,
        issue: { id, title: id, description: "", acceptance_criteria: "", status: "open", labels: [], blocked_by: [] },
      });
    },
    ready(): Promise<TrackerIssue[]> {
      return Promise.reject(
        new DxError("tracker_ready_unsupported", "the none tracker cannot list ready items", {
          remedy: 'pass --items or --items-file, or set "tracker" to beads or file in the config',
        }),
      );
    },
    markInProgress: ok,
    comment: ok,
    close: ok,
    versionCheck() {
      return Promise.resolve({ ok: true, reason_code: null, detail: "no tracker" });
    },
  };
}
