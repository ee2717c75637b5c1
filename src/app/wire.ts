import { readFileSync } from "node:fs";
import { DxError } from "../errors.js";
import { randomUUID } from "node:crypto";
import type { ResolvedConfig } from "../config/types.js";
import type { ControllerDeps, WaveFiles } from "../controller/ports.js";
import { systemClock } from "../controller/ports.js";
import { WaveSession, stamp } from "../controller/session.js";
import type { ItemSeed, WaveCreated, WaveEvent } from "../core/events.js";
import type { WavePolicy } from "../core/policy.js";
import type { WaveState } from "../core/state.js";
import { initialState, itemById } from "../core/step.js";
import { validateContract } from "../contract/validate.js";
import { createRunner } from "../runner/create.js";
import { keepLogsWithWave } from "./wave-logs.js";
import type { RunnerPort } from "../runner/port.js";
import { hostName } from "../store/proc.js";
import { createTracker } from "../tracker/create.js";
import type { TrackerPort } from "../tracker/port.js";
import { createWorkspace } from "./workspace.js";
import { createQueueWorkspace } from "./queue-workspace.js";
import type { AppContext } from "./context.js";
import { deliveryPort } from "./delivery.js";
import type { Progress } from "./progress-port.js";
import { createWaveFiles, createWaveDir, type WaveFilesHandle } from "./wave-files.js";
import { writeSnapshot } from "../store/snapshot.js";
import { fencedRunner, fencedTracker, takeTenure, type TenureHandle } from "./controller-tenure.js";
import { heartbeatStaleMs } from "../store/controller-lock.js";
import { recordApproval } from "../store/approvals.js";
import { monoNowMs } from "../store/mono.js";
import type { Clock } from "../controller/ports.js";

// The composition root: real store, runner, tracker and workspace behind the controller's ports.

export interface WaveRuntime {
  waveId: string;
  files: WaveFiles;
  runner: RunnerPort;
  tracker: TrackerPort;
  host: string;
  /** The tenure the wave is run under (absent only in tests that hand in their own files). */
  lock?: TenureHandle;
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
  // A webhook URL usually holds its secret in the path: keep it out of the ledger.
  const notify = config.notify?.webhook === undefined ? config.notify : { ...config.notify, webhook: REDACTED };
  return notify === undefined ? { ...config, providers } : { ...config, providers, notify };
}

/**
 * The controller's clock: wall time read once, then advanced by the monotonic clock, so no
 * decision taken on it (heartbeats, health checks, cooldowns, runtimes) moves when the wall clock
 * jumps (SPEC §15.3). Its readings drift from the wall clock by any jump that happens while the
 * controller runs, which only shifts the times it shows.
 */
export function monotonicClock(): Clock {
  const wall0 = Date.now();
  const mono0 = monoNowMs();
  const nowMs = () => wall0 + (monoNowMs() - mono0);
  return { nowMs, nowIso: () => new Date(nowMs()).toISOString(), setTimer: (fn, ms) => systemClock.setTimer(fn, ms) };
}
export const REDACTED = "<redacted>";

/** Create the wave directory (refusing `wave_exists`), take the lock and record `wave_created`. */
export async function createWave(
  c: AppContext,
  waveId: string,
  seed: { policy: WavePolicy; items: ItemSeed[] },
): Promise<{ session: WaveSession; files: WaveFilesHandle; lock: TenureHandle; created: WaveCreated }> {
  // wave_created at epoch 1 is the wave's first line, and the wave directory appears already
  // holding it (createWaveDir), so a start killed at any point leaves no half-made wave. Taking the
  // OS lock spawns a process, so it comes after.
  const e = stamp(
    { event: "wave_created", wave_id: waveId, wave_dir: c.layout.waveDir(waveId), config: recordedConfig(c.config), policy: seed.policy, items: seed.items },
    1,
    systemClock.nowIso(),
  );
  if (e.event !== "wave_created") throw new Error("unreachable");
  e.epoch = 1;
  createWaveDir(c.layout, waveId, e);
  const state = initialState(e);
  writeSnapshot(c.layout.waveState(waveId), state);
  const lock = await takeTenure(c.layout, waveId);
  const files = createWaveFiles(c, waveId, lock, 1);
  return { session: new WaveSession(files, state, systemClock), files, lock, created: e };
}

export async function openRuntime(c: AppContext, waveId: string, created: { files: WaveFilesHandle; lock?: TenureHandle }): Promise<WaveRuntime> {
  const runner = keepLogsWithWave(await createRunner(c.config, c.env, waveId), c.layout.logsDir(waveId));
  created.files.setRunnerPids(() => runner.livePids());
  const tracker = await createTracker(c.config.tracker, { cwd: c.cwd, env: c.env });
  const lock = created.lock;
  return {
    waveId,
    files: created.files,
    runner: lock === undefined ? runner : fencedRunner(runner, () => lock.holds(), waveId),
    tracker: lock === undefined ? tracker : fencedTracker(tracker, () => lock.holds()),
    host: hostName(),
    ...(lock === undefined ? {} : { lock }),
  };
}

export function buildDeps(c: AppContext, rt: WaveRuntime, progress: Progress): ControllerDeps {
  const cfg = c.config;
  const stallMs = cfg.stall_minutes * 60_000;
  return {
    files: rt.files,
    runner: rt.runner,
    tracker: rt.tracker,
    workspace: cfg.runner.type === "bullmq" ? createQueueWorkspace(cfg.workspace_root) : createWorkspace(cfg),
    contracts: { validate: validateContract },
    clock: monotonicClock(),
    newRunInstance: () => randomUUID(),
    templates: loadTemplates(cfg),
    delivery: cfg.pr === undefined ? null : deliveryPort(cfg.pr, rt.waveId, c.env),
    onEvent: (e, s) => {
      noteApproval(c, e, s, rt.files);
      progress.onEvent(e, s);
    },
    log: (l) => progress.log(l),
    timing: {
      stall_minutes: cfg.stall_minutes,
      max_runtime_minutes: cfg.max_runtime_minutes,
      exec_process_cap: cfg.exec_process_cap,
      // Stalls are minutes long; checking a few times per threshold is enough. Exits do not
      // wait for this: the runner reports them at once.
      health_interval_ms: Math.min(30_000, Math.max(250, Math.floor(stallMs / 4))),
      reattach_poll_ms: 500,
      // Several heartbeats per stale window, so a live controller never looks stale from elsewhere.
      heartbeat_ms: Math.max(250, Math.min(30_000, Math.floor(heartbeatStaleMs(c.env) / 4))),
      pause_grace_ms: pauseGraceMs(c.env),
    },
  };
}

/** An item this wave approved is recorded for later waves (store/approvals.ts, SPEC §15.4). */
function noteApproval(c: AppContext, e: WaveEvent, s: WaveState, files: Pick<WaveFiles, "syncLater">): void {
  if (!("item_id" in e)) return;
  const it = itemById(s, e.item_id);
  if (it?.status !== "approved" || it.reason_code.startsWith("already_approved:")) return;
  if (e.event !== "job_finished" && e.event !== "item_settled") return;
  // Synced in the background: durable before this wave's claims are released (store/approvals.ts).
  const rec = { item_id: it.beads_id, wave_id: s.wave_id, approved_at: e.at };
  if (files.syncLater === undefined) recordApproval(c.layout, rec);
  else files.syncLater(recordApproval(c.layout, rec, { sync: false }));
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
