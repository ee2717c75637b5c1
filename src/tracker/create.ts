import path from "node:path";
import type { TrackerConfig } from "../config/types.js";
import type { BeadsTrackerOptions } from "./beads.js";
import { createNoneTracker } from "./none.js";
import type { TrackerPort } from "./port.js";

// Each tracker is loaded only when configured: beads and file bring TypeBox (their JSON shapes)
// and execa (bd), which a wave with no tracker never needs at start-up (issue #14).

export interface CreateTrackerContext {
  /** Where bd runs, and what a relative file tracker path is resolved against. */
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** Beads only: overrides of the lock file, retry and timeouts (tests, tuning). */
  beads?: Omit<BeadsTrackerOptions, "command" | "cwd" | "env" | "close_on_approve">;
}

export async function createTracker(config: TrackerConfig, ctx: CreateTrackerContext): Promise<TrackerPort> {
  switch (config.type) {
    case "beads": {
      const { createBeadsTracker } = await import("./beads.js");
      return createBeadsTracker({
        ...ctx.beads,
        command: config.command ?? "bd",
        cwd: ctx.cwd,
        ...(ctx.env === undefined ? {} : { env: ctx.env }),
        close_on_approve: config.close_on_approve ?? false,
      });
    }
    case "file": {
      const { createFileTracker } = await import("./file.js");
      return createFileTracker(path.resolve(ctx.cwd, config.path));
    }
    case "none":
      return createNoneTracker();
  }
}
