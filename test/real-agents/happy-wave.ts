import { afterAll, beforeAll, expect, it } from "vitest";
import { happyScript, type HappyOptions } from "../fixtures/mock-models/script.js";
import { agentSandbox, INSTALL_TIMEOUT_MS, branchLog, dxBatch, runnerLogs, waveStatus, type AgentSandbox, type CliName } from "./harness.js";

// The promise each real CLI must keep through dx-batch's built-in provider argv: a two-item wave
// of implement then review ends approved, and each `dx/<item>` carries a commit with the change
// and its Feature-Key trailer.

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
      expect(s.items.map((i) => [i.beads_id, i.status, i.attempt])).toEqual(items.map((i) => [i, "approved", 1]));
      for (const item of items) {
        const b = branchLog(sb, item);
        expect(b.files, `${item}: ${logs()}`).toContain(`${item}.txt`);
        expect(b.bodies).toMatch(new RegExp(`^Feature-Key: ${item}$`, "m"));
      }
      // Each implementer really used the CLI's tools: the mock saw the tool results come back.
      const impl = sb.mock.turns.filter((t) => t.ctx.job.phase === "implement");
      expect(impl.some((t) => t.ctx.step >= 1)).toBe(true);
      // The reviewer was shown the change itself, and no prompt prescribes `git -C` or `$(…)`.
      for (const item of items) {
        const review = sb.mock.turns.find((t) => t.ctx.job.phase === "review" && t.ctx.job.item_id === item);
        expect(review?.ctx.prompt, `${item}: no review turn`).toContain("### git diff --stat");
        expect(review?.ctx.prompt).toContain(`+${item} attempt 1`);
      }
      for (const t of sb.mock.turns) {
        expect(t.ctx.prompt).not.toMatch(/git -C|\$\(/);
      }
      process.stderr.write(`[real-agents] ${cli}: two-item wave approved in ${r.ms} ms\n`);
    },
    WAVE_TIMEOUT_MS,
  );
}
