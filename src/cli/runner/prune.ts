import type { Command } from "commander";
import { printJson } from "../io.js";
import { action, openRunner, resolveConfig, withCommonOptions, type CommonOpts, type RunnerCommandContext } from "./shared.js";

// `dx-batch runner prune`: remove the pid files of dead processes, `{checked, pruned}`.

export function registerPrune(runner: Command, ctx: RunnerCommandContext): void {
  withCommonOptions(
    runner.command("prune").description("Remove pid files of dead processes: {checked, pruned}").option("--json", "one JSON document on stdout"),
  ).action(
    action(ctx)(async (o: CommonOpts & { json?: boolean }) => {
      const res = await (await openRunner(ctx, await resolveConfig(ctx, o))).prune();
      // dx-runner's shape: which waves the files were of is for the controller's note only.
      if (o.json) printJson(ctx.io, { checked: res.checked, pruned: res.pruned });
      else ctx.io.out(`checked=${res.checked} pruned=${res.pruned}`);
      return 0;
    }),
  );
}
