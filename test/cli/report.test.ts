import { beforeAll, describe, expect } from "vitest";
import { Ledger, outcomePath } from "../helpers/events.js";
import { buildCli } from "../helpers/build.js";
import { fileTmp, it } from "../helpers/fixtures.js";
import { expectRefusal, runCli } from "../helpers/cli.js";
import { parseJson, sandbox, writeWave, type Sandbox } from "../helpers/world.js";

// `report --format json|markdown`: per item its attempts with provider, verdicts, findings,
// durations and outcome paths, and the wave timeline (SPEC §2).

const bin = buildCli();

const W = "wave-r";
const major = { type: "major" as const, message: "no test for the | rounding rule", file: "src/price.ts", line: 12 };

/** bd-a1: revision then approval on another provider; bd-b2: blocked by its implementer; bd-c3: stalled then exhausted. */
function story(): Ledger {
  return new Ledger({ items: ["bd-a1", "bd-b2", "bd-c3"], policy: { max_attempts: 2 } })
    .preflight({ opencode: true, "cc-glm": true })
    .start()
    .implement("bd-a1", "opencode", "completed")
    .review("bd-a1", "cc-glm", "REVISION_REQUIRED", [major])
    .implement("bd-a1", "cc-glm", "completed")
    .review("bd-a1", "opencode", "APPROVED", [{ type: "positive", message: "well tested" }])
    .implement("bd-b2", "opencode", "blocked")
    .implement("bd-c3", "opencode", { state: "stalled", exit_code: null, runner_reason: "stalled", duration_sec: 900 })
    .implement("bd-c3", "cc-glm", "failed");
}

let sb: Sandbox;
beforeAll(() => {
  sb = sandbox(fileTmp);
  writeWave(sb, W, story().events);
});

const report = (format: string) => runCli(bin, ["report", "--config", sb.configPath, "--wave-id", W, "--format", format], { cwd: sb.root });

interface Attempt {
  attempt: number;
  phase: string;
  provider: string;
  state: string | null;
  reason_code: string | null;
  error: string | null;
  verdict: string | null;
  findings: { type: string; message: string }[];
  duration_sec: number | null;
  outcome_path: string | null;
  charged: boolean;
}
interface ReportDoc {
  wave_id: string;
  status: string;
  reason_code: string;
  next_action: string;
  stats: Record<string, number>;
  duration_sec: number | null;
  items: { beads_id: string; status: string; reason_code: string; attempts: Attempt[] }[];
  timeline: { seq: number; at: string; event: string; reason_code: string | null }[];
}

describe("report --format json", () => {
  it("gives every attempt with provider, state, verdict, findings, duration and outcome path", async () => {
    const r = await report("json");
    expect(r.code, r.stderr).toBe(0);
    const doc = parseJson(r.stdout) as ReportDoc;
    expect(doc).toMatchObject({ wave_id: W, status: "completed", reason_code: "wave_completed", next_action: "review_report_and_close_items" });
    expect(doc.stats).toMatchObject({ total: 3, approved: 1, blocked: 2 });
    expect(doc.duration_sec).toEqual(expect.any(Number));

    const [a1, b2, c3] = doc.items;
    expect(a1?.status).toBe("approved");
    expect(a1?.attempts.map((a) => [a.attempt, a.phase, a.provider, a.verdict])).toEqual([
      [1, "implement", "opencode", null],
      [1, "review", "cc-glm", "REVISION_REQUIRED"],
      [2, "implement", "cc-glm", null],
      [2, "review", "opencode", "APPROVED"],
    ]);
    expect(a1?.attempts[1]?.findings).toEqual([major]);
    expect(a1?.attempts[3]?.findings).toEqual([{ type: "positive", message: "well tested" }]);
    for (const a of a1?.attempts ?? []) {
      expect(a.outcome_path).toBe(outcomePath("bd-a1", a.phase === "review" ? "review" : "implement", a.attempt));
      expect(a.duration_sec).toEqual(expect.any(Number));
      expect(a.state).toBe("exited_ok");
    }

    expect(b2).toMatchObject({ status: "blocked", reason_code: "implement_reported_blocked" });
    expect(b2?.attempts).toHaveLength(1);

    expect(c3?.status).toBe("blocked");
    expect(c3?.attempts.map((a) => [a.provider, a.state, a.reason_code, a.error])).toEqual([
      // A stall is the runner's verdict: the error is the CLI's own last line, else the runner's reason (issue #11).
      ["opencode", "stalled", "stalled", "stalled"],
      ["cc-glm", "exited_ok", "implement_reported_failed", null],
    ]);
    for (const a of a1?.attempts ?? []) expect(a.error).toBeNull();
  });

  it("has the wave timeline in seq order, with the wave-level events only", async () => {
    const doc = parseJson((await report("json")).stdout) as ReportDoc;
    expect(doc.timeline.map((t) => t.event)).toEqual(["wave_created", "preflight_recorded", "wave_started"]);
    const seqs = doc.timeline.map((t) => t.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    for (const t of doc.timeline) expect(Number.isNaN(Date.parse(t.at))).toBe(false);
  });
});

describe("report --format markdown", () => {
  it("is the default and shows the item table, each attempt, findings, outcome paths and the timeline", async () => {
    const def = await runCli(bin, ["report", "--config", sb.configPath, "--wave-id", W], { cwd: sb.root });
    const r = await report("markdown");
    expect(r.code, r.stderr).toBe(0);
    expect(def.stdout).toBe(r.stdout);
    const md = r.stdout;
    expect(md).toContain(`# dx-batch wave ${W}`);
    expect(md).toContain("- status: **completed** (wave_completed); next action: `review_report_and_close_items`");
    expect(md).toContain("| item | status | reason | attempts | providers | last verdict |");
    expect(md).toContain("| bd-a1 | approved | approved | 2 | opencode, cc-glm | APPROVED |");
    expect(md).toMatch(/\| bd-b2 \| blocked \| implement_reported_blocked \| 1 \| opencode \| - \|/);
    expect(md).toContain("## bd-a1: title of bd-a1");
    expect(md).toMatch(/- attempt 1 review on cc-glm: exited_ok → revision_required \(REVISION_REQUIRED\), \d+\.\d s/);
    // A `|` in a finding is escaped so it cannot break the table it may be pasted into.
    expect(md).toContain("  - major: no test for the \\| rounding rule (src/price.ts:12)");
    expect(md).toContain(`  - outcome: \`${outcomePath("bd-a1", "review", 2)}\``);
    expect(md).toMatch(/- attempt 1 implement on opencode: stalled → stalled/);
    expect(md).toContain("## Timeline");
    expect(md).toMatch(/- \S+ #1 wave_created/);
    expect(md).toMatch(/- \S+ #\d+ wave_started/);
  });

  it("refuses an unknown format and a missing wave with one error line", async () => {
    expectRefusal(await report("html"), "usage");
    const missing = await runCli(bin, ["report", "--config", sb.configPath, "--wave-id", "no-such-wave", "--format", "json"], { cwd: sb.root });
    expect(parseJson(missing.stdout)).toMatchObject({ wave_id: "no-such-wave", reason_code: "wave_not_found" });
    expectRefusal(missing, "wave_not_found");
  });
});
