import { Command, CommanderError } from "commander";
import { createRequire } from "node:module";
import { registerRunnerCommand } from "./runner.js";
import { guardOutputStreams, processIo, reportError, type Io } from "./io.js";
import { registerReadCommands } from "./read-commands.js";
import { registerWaveCommands } from "./wave-commands.js";
import { registerDemoCommand } from "./demo.js";
import { registerLogsCommand } from "./logs.js";
import { registerWorkerCommand } from "./worker.js";
import { registerWorkersCommand } from "./workers.js";
import { registerListCommand } from "./list.js";
import { registerServeCommand } from "./serve.js";

// The command line. Every action returns an exit code instead of exiting, so main() is testable
// in-process and the process exits in exactly one place (bin/dx-batch.js).
//
// Start-up cost: the modules registered here only declare commands (names, options, help text);
// each action imports what it runs with `await import()`. `--version`, `--help` and `check` so
// never load the controller, the runner, the queue (bullmq/ioredis), the dashboard (prom-client,
// OpenTelemetry) or the live table (log-update). test/cli/lazy-load.test.ts keeps it that way.

const pkg = createRequire(import.meta.url)("../../package.json") as { version: string };

export interface CommandContext {
  io: Io;
  env: NodeJS.ProcessEnv;
  cwd: string;
  setExit(code: number): void;
}

export { positiveInt, positiveNumber } from "./parse.js";

export async function main(argv: readonly string[], io: Io = processIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let exit = 0;
  if (io === processIo) guardOutputStreams();
  const ctx: CommandContext = { io, env, cwd: process.cwd(), setExit: (c) => (exit = c) };
  const program = new Command("dx-batch")
    .description("Run waves of tracker items through coding agents: implement, review, retry with the next provider, never twice.")
    .version(pkg.version, "-V, --version")
    .showHelpAfterError("remedy: run `dx-batch --help` for usage")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
      outputError: (s, write) => write(`error: usage: ${s.replace(/^error: /, "").trim()}\n`),
    });
  registerWaveCommands(program, ctx);
  registerReadCommands(program, ctx);
  registerLogsCommand(program, ctx);
  registerRunnerCommand(program, ctx);
  registerDemoCommand(program, ctx);
  registerWorkerCommand(program, ctx);
  registerWorkersCommand(program, ctx);
  registerListCommand(program, ctx);
  registerServeCommand(program, ctx);
  // SPEC §2: a usage error is `error: usage: …` then one `remedy:` line naming the command's help.
  const remedies = (cmd: Command, name: string): void => {
    for (const sub of cmd.commands) {
      const full = `${name} ${sub.name()}`;
      sub.showHelpAfterError(`remedy: run \`${full} --help\` for usage`);
      remedies(sub, full);
    }
  };
  remedies(program, "dx-batch");
  try {
    await program.parseAsync([...argv]);
    return exit;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here with code 0; usage errors were already printed.
      return e.exitCode === 0 ? 0 : e.code === "commander.help" ? 0 : 1;
    }
    return reportError(io, e);
  }
}
