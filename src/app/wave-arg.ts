import { DxError, type ExitCode } from "../errors.js";
import type { AppContext } from "./context.js";
import { requireWaveId } from "./context.js";
import { latestWave } from "./latest-wave.js";

// `--wave-id` is optional on every command that reads a wave (SPEC §15.2): without it the newest
// wave of the artifact dir is used, and the command says which one on stderr.

export function waveIdOrLatest(c: AppContext, given: string | undefined, note: (line: string) => void, o: { exitCode?: ExitCode } = {}): string {
  if (given !== undefined) return requireWaveId(given);
  const latest = latestWave(c.config.artifact_dir);
  if (latest === null) {
    throw new DxError("wave_not_found", `no wave in ${c.layout.wavesDir()}`, {
      remedy: "start one with `dx-batch start --items …`, or point --config / DX_BATCH_ARTIFACT_DIR at the artifact dir that holds your waves",
      ...(o.exitCode === undefined ? {} : { exitCode: o.exitCode }),
    });
  }
  note(`using the newest wave: ${latest} (pass --wave-id to choose another)`);
  return latest;
}
