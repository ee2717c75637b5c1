import path from "node:path";
import type { TrackerConfig } from "../config/types.js";
import { createBeadsTracker, type BeadsTrackerOptions } from "./beads.js";
import { createFileTracker } from "./file.js";
import { createNoneTracker } from "./none.js";
import type { TrackerPort } from "./port.js";

export interface CreateTrackerContext {
  /** Where bd runs, and what a relative file tracker path is resolved against. */
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** Beads only: overrides of the lock file, retry and timeouts (tests, tuning). */
  beads?: Omit<BeadsTrackerOptions, "command" | "cwd" | "env" | "close_on_approve">;
}

export function createTracker(config: TrackerConfig, ctx: CreateTrackerContext): TrackerPort {
  switch (config.type) {
    case "beads":
      return createBeadsTracker({
        ...ctx.beads,
        command: config.command ?? "bd",
        cwd: ctx.cwd,
        ...(ctx.env === undefined ? {} : { env: ctx.env }),
        close_on_approve: config.close_on_approve ?? false,
      });
    case "file":
      return createFileTracker(path.resolve(ctx.cwd, config.path));
    case "none":
      return createNoneTracker();
  }
}
