import { afterAll, beforeAll, expect, it } from "vitest";
import { happyScript, type HappyOptions } from "../fixtures/mock-models/script.js";
import { readFileSync } from "node:fs";
import { agentSandbox, INSTALL_TIMEOUT_MS, branchLog, dxBatch, git, runnerLogs, waveReport, waveStatus, type AgentSandbox, type CliName } from "./harness.js";

// The promise each real CLI must keep through dx-batch's built-in provider argv: a two-item wave
// of implement then review ends approved, and each `dx/<item>` carries a commit with the change
// and its Feature-Key trailer. Who made that commit is pinned per CLI: Claude Code, OpenCode and
// Gemini commit with their own shell tool (the built-in argv lets them); Codex's sandbox keeps the
// git directory read-only, so dx-batch commits for it (auto_commit, with its trailers).

/** The CLIs whose built-in argv lets the agent run `git commit` itself. */
const AGENT_COMMITS: Record<CliName, boolean> = { claude: true, opencode: true, gemini: true, codex: false };

interface ReportAttempt {
  attempt: number;
  phase: string;
  reason_code: string | null;
  outcome_path: string | null;
  range: { from: string | null; to: string | null } | null;
  auto_commit: string | null;
}

export const WAVE_TIMEOUT_MS = 300_000;

export function happyWave(cli: CliName, prefix: string, script: HappyOptions = {}): void {
  let sb: AgentSandbox;
  const items = [`${prefix}-1`, `${prefix}-2`];
  beforeAll(async () => {
    sb = await agentSandbox(cli, happyScript(script));
  }, INSTALL_TIMEOUT_MS);
  afterAll(async () => sb.close());

  it(
    `a two-item wave through the built-in ${cli} provider ends approved, and dx/<item> carries the change with Feature-Key`,
    async () => {
      const r = await dxBatch(sb, ["start", "--wave-id", "w-happy", "--items", items.join(","), "--max-parallel", "2"]);
      const logs = (): string => `exit ${r.code} in ${r.ms} ms\nstderr: ${r.stderr}\n${runnerLogs(sb)}`;
      expect(r.code, logs()).toBe(0);
      const s = await waveStatus(sb, "w-happy");
      expect(s.status).toBe("completed");
      const report = await waveReport(sb, "w-happy");
      const attemptsOf = (item: string): ReportAttempt[] =>
        (report.items as { beads_id: string; attempts: ReportAttempt[] }[]).find((i) => i.beads_id === item)?.attempts ?? [];
      // Each item is approved on its first counted implement. A run the CLI itself failed on a
      // transient local fault (OpenCode's store locked by its sibling run) is rerun, uncounted, by
      // design; only such runs may come before it.
      const ranAt = (item: string): number => {
        const runs = attemptsOf(item).filter((a) => a.phase === "implement");
        expect(
          runs.slice(0, -1).map((a) => a.reason_code),
          `${item}: ${logs()}`,
        ).toEqual(runs.slice(0, -1).map(() => "agent_transient_error"));
        return runs.at(-1)?.attempt ?? 0;
      };
      expect(s.items.map((i) => [i.beads_id, i.status, i.attempt])).toEqual(items.map((i) => [i, "approved", ranAt(i)]));
      for (const item of items) {
        const b = branchLog(sb, item);
        expect(b.files, `${item}: ${logs()}`).toContain(`${item}.txt`);
        expect(b.bodies).toMatch(new RegExp(`^Feature-Key: ${item}$`, "m"));
      }
      // Usage read from the CLI's stream: per item and per wave in the report and in status.
      expect((report.usage as { tokens: number }).tokens).toBeGreaterThan(0);
      const status = await dxBatch(sb, ["status", "--wave-id", "w-happy"], 60_000);
      expect(status.stdout).toMatch(/^usage: [1-9]\d* tokens/m);
      for (const item of items) expect(status.stdout).toMatch(new RegExp(`^  ${item} .*approved \\([1-9]\\d* tokens`, "m"));
      const md = await dxBatch(sb, ["report", "--wave-id", "w-happy", "--format", "markdown"], 60_000);
      expect(md.stdout).toMatch(/^- usage: [1-9]\d* tokens/m);
      for (const item of items) expect(md.stdout).toMatch(new RegExp(`^\\| ${item} \\| approved \\|.*\\| [1-9]\\d* tokens[^|]* \\|$`, "m"));
      for (const item of items) {
        const impl = attemptsOf(item)
          .filter((a) => a.phase === "implement")
          .at(-1);
        const review = attemptsOf(item)
          .filter((a) => a.phase === "review")
          .at(-1);
        const tip = git(sb.repo, "rev-parse", `dx/${item}`).trim();
        const base = git(sb.repo, "rev-parse", "main").trim();
        const b = branchLog(sb, item);
        if (AGENT_COMMITS[cli]) {
          // The agent's own `git commit` went through: its commit is the branch, nothing was left over.
          expect(b.subjects, `${item}: ${logs()}`).toEqual([`${item}: add ${item}.txt`]);
          expect(impl?.auto_commit).toBeNull();
        } else {
          // dx-batch committed what the agent left: `<item>: <summary>` with the attempt's trailers.
          expect(b.subjects, `${item}: ${logs()}`).toEqual([`${item}: added ${item}.txt`]);
          expect(b.bodies).toMatch(new RegExp(`^Dx-Batch-Attempt: ${ranAt(item)}$`, "m"));
          expect(b.bodies).toMatch(new RegExp(`^Dx-Batch-Provider: ${sb.provider}$`, "m"));
          expect(impl?.auto_commit).toBe(tip);
        }
        // The attempt's own range, and the range the review was shown (recorded in its outcome).
        expect(impl?.range).toEqual({ from: base, to: tip });
        expect(review?.range).toEqual({ from: base, to: tip });
        const outcome = JSON.parse(readFileSync(String(review?.outcome_path), "utf8")) as { range?: unknown };
        expect(outcome.range).toEqual({ from: base, to: tip });
      }
      // Each implementer really used the CLI's tools: the mock saw the tool results come back.
      const impl = sb.mock.turns.filter((t) => t.ctx.job.phase === "implement");
      expect(impl.some((t) => t.ctx.step >= 1)).toBe(true);
      // The reviewer was shown the change itself, and no prompt prescribes `git -C` or `$(…)`.
      for (const item of items) {
        const review = sb.mock.turns.find((t) => t.ctx.job.phase === "review" && t.ctx.job.item_id === item);
        expect(review?.ctx.prompt, `${item}: no review turn`).toContain("### git diff --stat");
        expect(review?.ctx.prompt).toContain(`+${item} attempt ${ranAt(item)}`);
      }
      for (const t of sb.mock.turns) {
        expect(t.ctx.prompt).not.toMatch(/git -C|\$\(/);
      }
      process.stderr.write(`[real-agents] ${cli}: two-item wave approved in ${r.ms} ms\n`);
    },
    WAVE_TIMEOUT_MS,
  );
}
