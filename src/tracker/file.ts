import { readFile } from "node:fs/promises";
import { isTrackerReason } from "../core/reasons.js";
import { DxError } from "../errors.js";
import { parseBeadsIssue, toTrackerIssue, type NormalDependency } from "./issue-shape.js";
import type { ShowResult, TrackerIssue, TrackerPort, TrackerWrite } from "./port.js";

// The file tracker (SPEC §10): a JSONL file of Beads-shaped issues, one per line
// (`id, title, description, acceptance_criteria, status, labels, dependencies`; blank lines are
// skipped). Dependencies are read in either of bd's shapes, `[{id, dependency_type}]` (bd show)
// or `[{depends_on_id, type}]` (bd's JSONL export); see issue-shape.ts.
//
// It is read-only: markInProgress, comment and close change nothing and answer ok, so a wave
// behaves the same whatever the tracker. The file is read afresh on every call, so edits show up.
//
// `ready`: status `open`, and every `blocks` dependency closed. A dependency's status is taken
// from its own line in the file, else from the status bd embedded in the dependency entry; a
// dependency found in neither is treated as not closed (it blocks): nothing proves it is done.

interface FileEntry {
  issue: TrackerIssue;
  deps: NormalDependency[];
}

async function load(file: string): Promise<FileEntry[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if (e instanceof Error && "code" in e && e.code === "ENOENT") {
      throw new DxError("tracker_file_missing", `tracker file ${file} does not exist`, {
        remedy: `create ${file} (one JSON issue per line) or set "tracker" in the config`,
      });
    }
    throw new DxError("tracker_file_unreadable", `cannot read tracker file ${file}: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  }
  const entries: FileEntry[] = [];
  const seen = new Map<string, number>();
  const lines = text.split("\n");
  for (const [i, rawLine] of lines.entries()) {
    const lineNo = i + 1;
    const line = rawLine.trim();
    if (line === "") continue;
    const where = `${file}:${lineNo}`;
    const invalid = (why: string): DxError => new DxError("tracker_file_invalid", `${where}: ${why}`, { remedy: `fix line ${lineNo} of ${file}` });
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw invalid(`not JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    const p = parseBeadsIssue(value);
    if (!p.ok) throw invalid(p.detail);
    const earlier = seen.get(p.issue.id);
    if (earlier !== undefined) throw invalid(`duplicate id ${p.issue.id} (first on line ${earlier})`);
    seen.set(p.issue.id, lineNo);
    entries.push({ issue: toTrackerIssue(p.issue, p.deps), deps: p.deps });
  }
  return entries;
}

const ok = (): Promise<TrackerWrite> => Promise.resolve({ ok: true, reason_code: null });

export function createFileTracker(file: string): TrackerPort {
  return {
    type: "file",

    async show(id: string): Promise<ShowResult> {
      const entries = await load(file);
      const e = entries.find((x) => x.issue.id === id);
      if (!e) return { found: false, reason_code: "item_not_found", detail: `${id} is not in ${file}` };
      return { found: true, issue: e.issue };
    },

    async ready(opts: { limit?: number; label?: string }): Promise<TrackerIssue[]> {
      if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1)) {
        throw new DxError("invalid_limit", `--limit must be a positive integer, got ${String(opts.limit)}`);
      }
      const entries = await load(file);
      const statusOf = new Map(entries.map((e) => [e.issue.id, e.issue.status]));
      const closed = (d: NormalDependency): boolean => (statusOf.get(d.id) ?? d.status) === "closed";
      const out: TrackerIssue[] = [];
      for (const e of entries) {
        if (e.issue.status !== "open") continue;
        if (opts.label !== undefined && !e.issue.labels.includes(opts.label)) continue;
        if (!e.deps.filter((d) => d.type === "blocks").every(closed)) continue;
        out.push(e.issue);
        if (opts.limit !== undefined && out.length >= opts.limit) break;
      }
      return out;
    },

    markInProgress: ok,
    comment: ok,
    close: ok,

    async versionCheck() {
      try {
        const n = (await load(file)).length;
        return { ok: true, reason_code: null, detail: `${file}: ${n} issues` };
      } catch (e) {
        if (e instanceof DxError && isTrackerReason(e.code)) return { ok: false, reason_code: e.code, detail: e.message };
        throw e;
      }
    },
  };
}
