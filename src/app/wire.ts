import { readFileSync } from "node:fs";
import { DxError } from "../errors.js";
import { randomUUID } from "node:crypto";
import type { ResolvedConfig } from "../config/types.js";
import type { ControllerDeps, WaveFiles } from "../controller/ports.js";
import { systemClock } from "../controller/ports.js";
import { WaveSession, stamp } from "../controller/session.js";
import type { ItemSeed } from "../core/events.js";
import type { WavePolicy } from "../core/policy.js";
import type { WaveState } from "../core/state.js";
import { initialState } from "../core/step.js";
import { validateContract } from "../contract/validate.js";
import { createRunner } from "../runner/create.js";
import type { RunnerPort } from "../runner/port.js";
import { hostName } from "../store/proc.js";
import { createTracker } from "../tracker/create.js";
import type { TrackerPort } from "../tracker/port.js";
import { createWorkspace } from "./workspace.js";
import { createQueueWorkspace } from "./queue-workspace.js";
import type { AppContext } from "./context.js";
import type { Progress } from "./progress-port.js";
import { createWaveFiles, createWaveDir, takeControllerLock, type WaveFilesHandle } from "./wave-files.js";

// The composition root: real store, runner, tracker and workspace behind the controller's ports.

export interface WaveRuntime {
  waveId: string;
  files: WaveFiles;
  runner: RunnerPort;
  tracker: TrackerPort;
  host: string;
}

/**
 * The config as recorded in the ledger: every provider `env` value is redacted unless its key is
 * listed in that provider's `public_env` (issue #10: a name that does not look secret, such as
 * GLM_EXTRA_CREDS, may still hold a secret). `resume` takes redacted values from the current config.
 */
export function recordedConfig(config: ResolvedConfig): ResolvedConfig {
  const providers: ResolvedConfig["providers"] = {};
  for (const [name, p] of Object.entries(config.providers)) {
    const pub = new Set(p.public_env ?? []);
    const env = p.env ? Object.fromEntries(Object.entries(p.env).map(([k, v]) => [k, pub.has(k) ? v : "<redacted>"])) : undefined;
    providers[name] = env === undefined ? { ...p } : { ...p, env };
  }
  return { ...config, providers };
}

/** Create the wave directory (refusing `wave_exists`), take the lock and record `wave_created`. */
export function createWave(
  c: AppContext,
  waveId: string,
  seed: { policy: WavePolicy; items: ItemSeed[] },
): { session: WaveSession; files: WaveFilesHandle } {
  createWaveDir(c.layout, waveId);
  const lock = takeControllerLock(c.layout, waveId);
  const files = createWaveFiles(c, waveId, lock, 0);
  const e = stamp(
    { event: "wave_created", wave_id: waveId, wave_dir: c.layout.waveDir(waveId), config: recordedConfig(c.config), policy: seed.policy, items: seed.items },
    1,
    systemClock.nowIso(),
  );
  if (e.event !== "wave_created") throw new Error("unreachable");
  files.append(e);
  const state = initialState(e);
  files.writeSnapshot(state);
  return { session: new WaveSession(files, state, systemClock), files };
}

export function openRuntime(c: AppContext, waveId: string, created: { files: WaveFilesHandle }): WaveRuntime {
  const runner = createRunner(c.config, c.env, waveId);
  created.files.setRunnerPids(() => runner.livePids());
  return {
    waveId,
    files: created.files,
    runner,
    tracker: createTracker(c.config.tracker, { cwd: c.cwd, env: c.env }),
    host: hostName(),
  };
}

export function buildDeps(c: AppContext, rt: WaveRuntime, _state: WaveState, progress: Progress): ControllerDeps {
  const cfg = c.config;
  const stallMs = cfg.stall_minutes * 60_000;
  return {
    files: rt.files,
    runner: rt.runner,
    tracker: rt.tracker,
    workspace: cfg.runner.type === "bullmq" ? createQueueWorkspace(cfg.workspace_root) : createWorkspace(cfg),
    contracts: { validate: validateContract },
    clock: systemClock,
    newRunInstance: () => randomUUID(),
    templates: loadTemplates(cfg),
    onEvent: (e, s) => progress.onEvent(e, s),
    log: (l) => progress.log(l),
    timing: {
      stall_minutes: cfg.stall_minutes,
      max_runtime_minutes: cfg.max_runtime_minutes,
      exec_process_cap: cfg.exec_process_cap,
      // Stalls are minutes long; checking a few times per threshold is enough. Exits do not
      // wait for this: the runner reports them at once.
      health_interval_ms: Math.min(30_000, Math.max(250, Math.floor(stallMs / 4))),
      reattach_poll_ms: 500,
      heartbeat_ms: 30_000,
      pause_grace_ms: pauseGraceMs(c.env),
    },
  };
}


/** A second Ctrl-C is only likely at a terminal; scripts and tests may set it explicitly. */
function pauseGraceMs(env: NodeJS.ProcessEnv): number {
  const v = Number(env.DX_BATCH_PAUSE_GRACE_MS);
  if (env.DX_BATCH_PAUSE_GRACE_MS !== undefined && Number.isFinite(v) && v >= 0) return v;
  return process.stdin.isTTY ? 3000 : 0;
}

function loadTemplates(cfg: ResolvedConfig): { implement?: string; review?: string } {
  const out: { implement?: string; review?: string } = {};
  for (const k of ["implement", "review"] as const) {
    const file = cfg.prompts[k];
    if (file === undefined) continue;
    try {
      out[k] = readFileSync(file, "utf8");
    } catch (e) {
      throw new DxError("prompt_template_unreadable", `cannot read prompts.${k} template ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  return out;
}
