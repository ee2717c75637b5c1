import { Command, CommanderError } from "commander";
import { processIo, reportError, type Io } from "./io.js";
import { registerWorkerCommand } from "./worker.js";
import { registerWorkersCommand } from "./workers.js";

// `dx-batch worker` / `dx-batch workers` on their own, without the rest of the CLI: what a host
// that only runs jobs needs (and what the queue tests start). argv as process.argv.

export async function workerMain(argv: readonly string[], io: Io = processIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let exit = 0;
  const program = new Command("dx-batch")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
      outputError: (s, write) => write(`error: usage: ${s.replace(/^error: /, "").trim()}\n`),
    });
  const ctx = { io, env, cwd: process.cwd(), setExit: (c: number) => (exit = c) };
  registerWorkerCommand(program, ctx);
  registerWorkersCommand(program, ctx);
  try {
    await program.parseAsync(argv);
    return exit;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 || e.code === "commander.help" ? 0 : 1;
    return reportError(io, e);
  }
}
