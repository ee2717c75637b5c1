import { spawn } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ensureDir } from "../store/fsx.js";
import type { AppContext } from "./context.js";

// `start --detach`: the wave is created in the foreground (so input errors still reach the user),
// then a background `resume` runs the controller with its log under the wave directory.

const BIN = fileURLToPath(new URL("../../bin/dx-batch.js", import.meta.url));

export function spawnDetached(c: AppContext, waveId: string): string {
  const logsDir = c.layout.logsDir(waveId);
  ensureDir(logsDir);
  const logPath = path.join(logsDir, "controller.log");
  const fd = openSync(logPath, "a", 0o600);
  try {
    const args = [BIN, "resume", "--wave-id", waveId, "--detached-child"];
    if (c.configSource) args.push("--config", c.configSource);
    const child = spawn(process.execPath, args, {
      cwd: c.cwd,
      env: { ...c.env, DX_BATCH_ARTIFACT_DIR: c.config.artifact_dir },
      detached: true,
      stdio: ["ignore", fd, fd],
    });
    child.unref();
  } finally {
    closeSync(fd);
  }
  return logPath;
}
