import { existsSync, rmSync } from "node:fs";
import path from "node:path";
import { isValidItemId, isValidWaveId } from "../core/ids.js";
import type { Phase } from "../core/status.js";
import { DxError } from "../errors.js";
import { ensureSecureDir, forgetSecureDir, registerStateRoot } from "./secure-dir.js";

// Every path of the SPEC §5 layout, computed in one place. The functions are pure apart from
// refusing ids that do not match SPEC §4: an id reaches this file from the command line, a ledger
// or a directory listing, and a path built from `../x` or `a/b` would escape the artifact root.

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;

/** leases/_items: no wave id can take this name, wave ids start with a letter or digit. */
export const CLAIMS_DIR_NAME = "_items";
export const LEDGER_SUFFIX = ".ledger.jsonl";
export const LEASE_SUFFIX = ".lock";
export const PID_SUFFIX = ".pid";

export interface Layout {
  readonly root: string;
  wavesDir(): string;
  waveDir(wave: string): string;
  waveState(wave: string): string;
  waveLedger(wave: string): string;
  controllerLock(wave: string): string;
  outcomesDir(wave: string): string;
  outcomePath(wave: string, item: string, phase: Phase, attempt: number): string;
  logsDir(wave: string): string;
  promptsDir(wave: string): string;
  promptPath(wave: string, item: string, phase: Phase, attempt: number): string;
  leasesRoot(): string;
  leasesDir(wave: string): string;
  leasePath(wave: string, item: string, attempt: number): string;
  /** `<wave>/<item>+attempt<n>`: the lease's name relative to leases/, recorded as `lease_key`. */
  leaseKey(wave: string, item: string, attempt: number): string;
  claimsDir(): string;
  claimPath(item: string): string;
  ledgersRoot(): string;
  itemLedgersDir(wave: string): string;
  itemLedger(wave: string, item: string): string;
  jobsRoot(): string;
  jobsDir(wave: string): string;
  jobPidPath(wave: string, pid: number): string;
}

export function checkWaveId(wave: string): string {
  if (!isValidWaveId(wave)) {
    throw new DxError("invalid_wave_id", `wave id ${JSON.stringify(wave)} does not match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`, {
      remedy: "use letters, digits, '_' and '-', at most 64 characters, starting with a letter or digit",
    });
  }
  return wave;
}

export function checkItemId(item: string): string {
  if (!isValidItemId(item)) {
    throw new DxError("invalid_item_id", `item id ${JSON.stringify(item.slice(0, 80))} is not a valid item id`, {
      remedy: "item ids look like bd-a1b2 or demo-7f3a86.1.2",
    });
  }
  return item;
}

function checkPhase(phase: string): Phase {
  if (phase !== "implement" && phase !== "review") {
    throw new DxError("invalid_phase", `phase ${JSON.stringify(phase)} is neither implement nor review`);
  }
  return phase;
}

function checkPositive(what: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new DxError(`invalid_${what}`, `${what} ${String(n)} is not a positive integer`);
  return n;
}

export function createLayout(artifactDir: string): Layout {
  const root = registerStateRoot(artifactDir);
  const wavesDir = () => path.join(root, "waves");
  const waveDir = (wave: string) => path.join(wavesDir(), checkWaveId(wave));
  const runName = (item: string, phase: Phase, attempt: number) => `${checkItemId(item)}.${checkPhase(phase)}.attempt${checkPositive("attempt", attempt)}`;
  const leaseName = (item: string, attempt: number) => `${checkItemId(item)}+attempt${checkPositive("attempt", attempt)}`;
  const leasesRoot = () => path.join(root, "leases");
  const ledgersRoot = () => path.join(root, "ledgers");
  const jobsRoot = () => path.join(root, "jobs");

  return {
    root,
    wavesDir,
    waveDir,
    waveState: (wave) => path.join(waveDir(wave), "wave_state.json"),
    waveLedger: (wave) => path.join(waveDir(wave), "wave.ledger.jsonl"),
    controllerLock: (wave) => path.join(waveDir(wave), "controller.lock"),
    outcomesDir: (wave) => path.join(waveDir(wave), "outcomes"),
    outcomePath: (wave, item, phase, attempt) => path.join(waveDir(wave), "outcomes", `${runName(item, phase, attempt)}.outcome.json`),
    logsDir: (wave) => path.join(waveDir(wave), "logs"),
    promptsDir: (wave) => path.join(root, "prompts", checkWaveId(wave)),
    promptPath: (wave, item, phase, attempt) => path.join(root, "prompts", checkWaveId(wave), `${runName(item, phase, attempt)}.prompt`),
    leasesRoot,
    leasesDir: (wave) => path.join(leasesRoot(), checkWaveId(wave)),
    leasePath: (wave, item, attempt) => path.join(leasesRoot(), checkWaveId(wave), `${leaseName(item, attempt)}${LEASE_SUFFIX}`),
    leaseKey: (wave, item, attempt) => `${checkWaveId(wave)}/${leaseName(item, attempt)}`,
    claimsDir: () => path.join(leasesRoot(), CLAIMS_DIR_NAME),
    claimPath: (item) => path.join(leasesRoot(), CLAIMS_DIR_NAME, `${checkItemId(item)}${LEASE_SUFFIX}`),
    ledgersRoot,
    itemLedgersDir: (wave) => path.join(ledgersRoot(), checkWaveId(wave)),
    itemLedger: (wave, item) => path.join(ledgersRoot(), checkWaveId(wave), `${checkItemId(item)}${LEDGER_SUFFIX}`),
    jobsRoot,
    jobsDir: (wave) => path.join(jobsRoot(), checkWaveId(wave)),
    jobPidPath: (wave, pid) => path.join(jobsRoot(), checkWaveId(wave), `${checkPositive("pid", pid)}${PID_SUFFIX}`),
  };
}

/**
 * Create every directory a wave writes (0700, each one on the way checked as ours: secure-dir.ts);
 * on failure, remove the ones this call created.
 */
export function ensureWaveDirs(layout: Layout, wave: string): void {
  const created: string[] = [];
  try {
    for (const dir of wavesDirs(layout, wave)) {
      if (!existsSync(dir)) created.push(dir);
      ensureSecureDir(dir);
    }
  } catch (e) {
    for (const dir of created.reverse()) {
      rmSync(dir, { recursive: true, force: true });
      forgetSecureDir(dir);
    }
    throw e;
  }
}

function wavesDirs(layout: Layout, wave: string): string[] {
  return [
    layout.waveDir(wave),
    layout.outcomesDir(wave),
    layout.logsDir(wave),
    layout.promptsDir(wave),
    layout.leasesDir(wave),
    layout.claimsDir(),
    layout.itemLedgersDir(wave),
    layout.jobsDir(wave),
  ];
}
