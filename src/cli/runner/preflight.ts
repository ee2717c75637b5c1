import type { Command } from "commander";
import { action, openRunner, resolveConfig, usage, withCommonOptions, type CommonOpts, type RunnerCommandContext } from "./shared.js";

// `dx-batch runner preflight`: exit 0 available, else 1 with a `reason_code=` line (dx-runner's).

export function registerPreflight(runner: Command, ctx: RunnerCommandContext): void {
  withCommonOptions(
    runner
      .command("preflight")
      .description("Offline provider check: exit 0 available, else 1 with a reason_code= line")
      .option("--provider <name>", "provider to check"),
  ).action(
    action(ctx)(async (o: CommonOpts & { provider?: string }) => {
      if (o.provider === undefined || o.provider === "") throw usage("--provider is required");
      const res = await (await openRunner(ctx, await resolveConfig(ctx, o))).preflight(o.provider);
      if (res.ok) {
        ctx.io.out(`provider=${o.provider} status=available`);
        return 0;
      }
      ctx.io.out(`provider=${o.provider} status=unavailable`);
      ctx.io.out(`reason_code=${res.reason_code ?? "unknown"}`);
      if (res.detail) ctx.io.out(`detail=${res.detail}`);
      return 1;
    }),
  );
}
