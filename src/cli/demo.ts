import type { Command } from "commander";
import type { CommandContext } from "./main.js";

// `dx-batch demo`: the README's first command. Builds a throw-away repository and issue file, runs
// a real wave over them with the stand-in agent, then prints the markdown report.

export function registerDemoCommand(program: Command, ctx: CommandContext): void {
  program
    .command("demo")
    .description("Run a demo wave offline: a throw-away repo, 6 issues, a stand-in agent; prints the report")
    .option("--dir <path>", "build the demo here instead of a new temp directory")
    .action(async (o: { dir?: string }) => {
      const { main } = await import("./main.js");
      const { demoExitCode, DEMO_NOT_APPROVED, setUpDemo } = await import("../app/demo.js");
      const d = setUpDemo(o.dir);
      ctx.io.out(`demo: repository ${d.repo}`);
      ctx.io.out(`demo: config ${d.configPath} (the agent is examples/demo-agent.mjs, a stand-in for opencode / Claude Code)`);
      const waveId = "demo-wave";
      const code = await main(["node", "dx-batch", "start", "--config", d.configPath, "--items", d.itemIds.join(","), "--wave-id", waveId], ctx.io, ctx.env);
      await main(["node", "dx-batch", "report", "--config", d.configPath, "--wave-id", waveId], ctx.io, ctx.env);
      ctx.io.out(`demo: artifacts in ${d.root}/artifacts/waves/${waveId}; worktrees in ${d.root}/agents`);
      ctx.io.out(`demo: try  node bin/dx-batch.js status --config ${d.configPath} --wave-id ${waveId}`);
      // The demo is designed to block one item (and its dependent): exit 4 with exactly those is
      // its expected end.
      const { openContext } = await import("../app/context.js");
      const { readWave } = await import("../app/read-wave.js");
      const w = await readWave(openContext(ctx, { config: d.configPath }).layout, waveId);
      const notApproved = (w?.state.items ?? []).filter((i) => i.status !== "approved").map((i) => i.beads_id);
      const exit = demoExitCode(code, notApproved);
      if (code === 4 && exit !== 0) {
        ctx.io.err(`demo: expected only ${DEMO_NOT_APPROVED.join(", ")} not approved, got ${notApproved.join(", ") || "none"}`);
      }
      ctx.setExit(exit);
    });
}
