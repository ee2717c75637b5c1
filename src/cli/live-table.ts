import type { Progress } from "../app/progress-port.js";
import type { CommandContext } from "./main.js";
import { describeEvent } from "./describe.js";

// Placeholder-free minimal TTY view until the live table lands: lines, like a non-TTY run.
export function createLiveTable(ctx: CommandContext): Progress {
  const { io } = ctx;
  return {
    onEvent: (e, s) => {
      const line = describeEvent(e, s);
      if (line) io.out(`${e.at} ${line}`);
    },
    log: (l) => io.err(l),
    warn: (l) => io.err(`warning: ${l}`),
    waveId: () => undefined,
    end: (s) => io.out(`wave ${s.wave_id} ${s.status} (${s.reason_code}); artifacts: ${s.wave_dir}`),
  };
}
