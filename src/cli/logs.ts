import type { Command } from "commander";
import { isValidItemId } from "../core/ids.js";
import { DxError } from "../errors.js";
import type { CommandContext } from "./main.js";
import { positiveInt } from "./parse.js";

// `dx-batch logs <item>`: the agent log of one attempt, or of a running job as it grows.

interface LogsOpts {
  config?: string;
  waveId?: string;
  phase?: string;
  attempt?: number;
  follow?: boolean;
}

export function registerLogsCommand(program: Command, ctx: CommandContext): void {
  program
    .command("logs")
    .description("Print an attempt's agent log (default: the item's latest run); --follow tails a running job until it ends")
    .argument("<item>", "the item id")
    .option("--config <file>", "config file")
    .option("--wave-id <id>", "the wave (default: the newest)")
    .option("--phase <phase>", "implement or review (default: the latest run's; implement with --attempt)")
    .option("--attempt <n>", "the attempt number (default: the latest)", positiveInt("--attempt"))
    .option("--follow", "keep printing while the job runs; stop when its attempt ends")
    .action(async (item: string, o: LogsOpts) => {
      if (!isValidItemId(item)) throw (await import("../app/start.js")).invalidItemId(item);
      if (o.phase !== undefined && o.phase !== "implement" && o.phase !== "review") {
        throw new DxError("usage", `--phase must be implement or review, not ${o.phase}`);
      }
      const { openContext } = await import("../app/context.js");
      const { waveIdOrLatest } = await import("../app/wave-arg.js");
      const { findAttemptLog, followLog, printLog } = await import("../app/logs.js");
      const c = openContext(ctx, { config: o.config });
      const waveId = waveIdOrLatest(c, o.waveId, (line) => ctx.io.err(line));
      const log = await findAttemptLog(c, waveId, { item, phase: o.phase, attempt: o.attempt });
      const what = `${item} ${log.phase} attempt ${log.attempt} on ${log.provider}${log.running ? " (running)" : ""}`;
      if (log.path === null) {
        throw new DxError("log_not_found", `${what}: the job never started, so there is no log`, { remedy: `see dx-batch report --wave-id ${waveId}` });
      }
      if (log.remote_path === null) ctx.io.err(`logs: ${what}: ${log.path}`);
      else {
        // The whole log stays on the worker's host; its tail comes back with the result.
        const { LOG_TAIL_BYTES } = await import("../queue/protocol.js");
        ctx.io.err(`logs: ${what}: on a remote worker (${log.remote_path}); its last ${LOG_TAIL_BYTES / 1024} KiB, from the result: ${log.path}`);
      }
      const write = (s: string): void => void process.stdout.write(s);
      if (o.follow && log.running) {
        if (log.remote_path !== null) ctx.io.err(`logs: waiting for the attempt to end on its worker; its tail comes back with the result`);
        await followLog(c, waveId, log, write);
        ctx.io.err(`logs: ${item} ${log.phase} attempt ${log.attempt} ended`);
        return;
      }
      try {
        await printLog(log.path, write);
      } catch (e) {
        const remedy =
          log.remote_path === null
            ? "the runner's files may have been pruned or rotated; the outcome file still has the result"
            : log.running
              ? `the job still runs on its worker: dx-batch logs ${item} --wave-id ${waveId} --follow prints its tail when it ends`
              : `the whole log is on the worker's host, at ${log.remote_path}`;
        throw new DxError("log_not_found", `cannot read ${log.path}: ${e instanceof Error ? e.message : String(e)}`, { remedy });
      }
    });
}
