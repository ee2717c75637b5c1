import { Command, CommanderError } from "commander";
import { createRequire } from "node:module";
import { guardOutputStreams, processIo, reportError, type Io } from "./io.js";

// The command line. Every action returns an exit code instead of exiting, so main() is testable
// in-process and the process exits in exactly one place (bin/dx-batch.js).
//
// Start-up cost: the modules registered here only declare commands (names, options, help text);
// each action imports what it runs with `await import()`. `--version`, `--help` and `check` so
// never load the controller, the runner, the queue (bullmq/ioredis), the dashboard (prom-client,
// OpenTelemetry) or the live table (log-update). test/cli/lazy-load.test.ts keeps it that way.
// A command named on the command line has only its own declarations loaded; `--help`, `--version`
// and a name that is no command load them all (the full list, and commander's "did you mean").

const pkg = createRequire(import.meta.url)("../../package.json") as { version: string };

export interface CommandContext {
  io: Io;
  env: NodeJS.ProcessEnv;
  cwd: string;
  setExit(code: number): void;
}

export { positiveInt, positiveNumber } from "./parse.js";

type Register = (program: Command, ctx: CommandContext) => void;

/** The declaring modules, in the order `--help` lists their commands. */
const DECLARATIONS: readonly { names: readonly string[]; load: () => Promise<Register> }[] = [
  { names: ["start", "resume", "retry", "cancel"], load: async () => (await import("./wave-commands.js")).registerWaveCommands },
  { names: ["status", "check", "report", "doctor"], load: async () => (await import("./read-commands.js")).registerReadCommands },
  { names: ["logs"], load: async () => (await import("./logs.js")).registerLogsCommand },
  { names: ["runner"], load: async () => (await import("./runner.js")).registerRunnerCommand },
  { names: ["demo"], load: async () => (await import("./demo.js")).registerDemoCommand },
  { names: ["worker"], load: async () => (await import("./worker.js")).registerWorkerCommand },
  { names: ["workers"], load: async () => (await import("./workers.js")).registerWorkersCommand },
  { names: ["list"], load: async () => (await import("./list.js")).registerListCommand },
  { names: ["serve"], load: async () => (await import("./serve.js")).registerServeCommand },
];

/** The declarations to load for this command line: the named command's, else all of them. */
function declarationsFor(argv: readonly string[]): typeof DECLARATIONS {
  const name = argv[2];
  const one = name === undefined ? undefined : DECLARATIONS.find((d) => d.names.includes(name));
  return one === undefined ? DECLARATIONS : [one];
}

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
  for (const register of await Promise.all(declarationsFor(argv).map((d) => d.load()))) register(program, ctx);
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
