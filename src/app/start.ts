import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { ItemSeed } from "../core/events.js";
import { defaultWaveId, isValidItemId, MAX_ITEM_ID_LENGTH } from "../core/ids.js";
import { ItemReason } from "../core/reasons.js";
import { DxError } from "../errors.js";
import { createTracker } from "../tracker/create.js";
import type { TrackerPort } from "../tracker/port.js";
import { toPolicy } from "../config/policy.js";
import type { AppContext } from "./context.js";
import type { Progress } from "./progress-port.js";
import { runWave } from "./run-wave.js";
import { createWave, openRuntime } from "./wire.js";
import { spawnDetached } from "./detach.js";
import { createRunner } from "../runner/create.js";
import { preflightAll, preflightProviders, refuseBadRepo, refuseNoProvider, refuseUnknownItems, refuseUnknownProviders } from "./refuse-early.js";
import { waveExists } from "./wave-exists.js";
import { waveIds } from "./latest-wave.js";

// `start`: validate the input, create the wave (or refuse wave_exists), take the controller lock,
// then preflight, prune, guard and run (SPEC §2, issue #4 step 1).

export interface StartInput {
  items?: string | undefined;
  itemsFile?: string | undefined;
  ready: boolean;
  limit?: number | undefined;
  label?: string | undefined;
  waveId?: string | undefined;
  detach: boolean;
  /** Run items an earlier wave approved anyway (otherwise they end `already_approved:<wave>`). */
  redo?: boolean | undefined;
  /** Run the items the tracker knows and drop the rest (default: refuse `item_not_found`). */
  allowMissing?: boolean;
  /** Record the wave even when no provider passes preflight (it ends failed `no_provider_available`). */
  keepFailed?: boolean;
}

export function invalidItemId(id: string): DxError {
  const why = id.length > MAX_ITEM_ID_LENGTH ? `is ${id.length} characters (at most ${MAX_ITEM_ID_LENGTH})` : "does not match <prefix>-<id>[.n…]";
  return new DxError("invalid_item_id", `item id ${JSON.stringify(id.length > 80 ? `${id.slice(0, 80)}…` : id)} ${why}`);
}

/** Parse, validate and de-duplicate the item list; nothing is written before this passes. */
export async function collectItemIds(c: AppContext, input: StartInput, tracker: TrackerPort, warn: (l: string) => void): Promise<string[]> {
  const sources = [input.items !== undefined, input.itemsFile !== undefined, input.ready].filter(Boolean).length;
  if (sources !== 1) {
    throw new DxError("usage", "give exactly one of --items, --items-file or --ready", { remedy: "e.g. dx-batch start --items bd-a1b2,bd-c3d4" });
  }
  let raw: string[];
  if (input.items !== undefined)
    raw = input.items
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
  else if (input.itemsFile !== undefined) {
    const file = path.resolve(c.cwd, input.itemsFile);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      throw new DxError("items_file_unreadable", `cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    raw = text
      .split("\n")
      .map((l) => l.replace(/#.*/, "").trim())
      .filter((l) => l.length > 0);
  } else {
    const ready = await tracker.ready({ limit: input.limit, label: input.label });
    raw = ready.map((i) => i.id);
  }
  for (const id of raw) if (!isValidItemId(id)) throw invalidItemId(id);
  const seen = new Set<string>();
  const out: string[] = [];
  for (const id of raw) {
    if (seen.has(id)) {
      warn(`duplicate item ${id} removed`);
      continue;
    }
    seen.add(id);
    out.push(id);
  }
  if (out.length === 0) {
    throw new DxError("no_items", input.ready ? "the tracker's ready list is empty" : "the item list is empty");
  }
  return out;
}

export async function startWave(c: AppContext, input: StartInput, progress: Progress): Promise<number> {
  const tracker = await createTracker(c.config.tracker, { cwd: c.cwd, env: c.env });
  const ids = await collectItemIds(c, input, tracker, (l) => progress.warn(l));
  const now = new Date().toISOString();
  const waveId = input.waveId ?? defaultWaveId(now, randomBytes(2).toString("hex"));
  const policy = toPolicy(c.config);
  // Whether any wave exists, not which is newest: that reads every wave's ledger (latest-wave.ts).
  if (waveIds(c.config.artifact_dir).length === 0) progress.log(firstRunLine(c));
  // Refusals that cost nothing: no wave directory exists until all of them pass (issue #13).
  refuseUnknownProviders(c.config, policy);
  await refuseBadRepo(c.config.repo);
  await refuseExistingWave(c, waveId);

  // Ask the tracker about every item before anything is written: titles, in-wave dependencies,
  // and which ids it does not know.
  const seeds: ItemSeed[] = [];
  const unknown: { id: string; detail: string }[] = [];
  const inWave = new Set(ids);
  for (const id of ids) {
    const r = await tracker.show(id);
    if (r.found) seeds.push({ id, title: r.issue.title, depends_on: r.issue.blocked_by.filter((d) => inWave.has(d) && d !== id) });
    else {
      if (r.reason_code === ItemReason.item_not_found) {
        unknown.push({ id, detail: r.detail });
        continue;
      }
      seeds.push({ id, title: id, depends_on: [] });
      // The tracker's own words whole, on the lines under the warning.
      progress.warn(`${id}: tracker lookup failed (${r.reason_code}); continuing with the id alone\n${r.detail}`);
    }
  }
  refuseUnknownItems(unknown, input.allowMissing === true);
  for (const u of unknown) progress.warn(`${u.id}: not known to the tracker; left out (--allow-missing)`);
  if (seeds.length === 0) {
    throw new DxError("no_items", "no item of the list is known to the tracker", { remedy: "check the ids and the tracker in the config" });
  }

  return launchWave(c, waveId, seeds, { detach: input.detach, keepFailed: input.keepFailed === true, redo: input.redo === true }, progress);
}

/**
 * Preflight (refusing `no_provider_available` unless keepFailed), then create the wave and run it,
 * or hand it to a background controller. Shared by start and retry.
 */
export async function launchWave(
  c: AppContext,
  waveId: string,
  seeds: ItemSeed[],
  o: { detach: boolean; keepFailed: boolean; redo?: boolean },
  progress: Progress,
): Promise<number> {
  // --redo: run items an earlier wave approved anyway (SPEC §15.4).
  const policy = o.redo === true ? { ...toPolicy(c.config), redo: true } : toPolicy(c.config);
  const runner = await createRunner(c.config, c.env);
  // This runner only preflights: a queue runner's Redis connection would keep the process alive.
  const pre = await preflightAll(runner, preflightProviders(policy)).finally(() => runner.close?.());
  if (!o.keepFailed) refuseNoProvider(policy, pre.raw);

  const rt = await createWave(c, waveId, { policy, items: seeds });
  progress.waveId(waveId);
  // The first event of the wave, which the session did not append: NDJSON starts here.
  progress.onEvent(rt.created, rt.session.state);
  if (o.detach) {
    rt.session.flush(true);
    rt.files.releaseControllerLock();
    const log = spawnDetached(c, waveId);
    progress.log(`controller running in the background; log: ${log}`);
    progress.log(`watch it with: dx-batch status --wave-id ${waveId} --watch`);
    // SPEC §2: --detach prints the wave id; the end line (or the --json summary) carries it on stdout.
    progress.end(rt.session.state, { kind: "detached" });
    return 0;
  }
  const runtime = await openRuntime(c, waveId, rt);
  return runWave(c, runtime, rt.session.state, "start", progress, pre.results);
}

/** On a first run (no wave yet in the artifact dir): which config and tracker are in use. */
export function firstRunLine(c: AppContext): string {
  const t = c.config.tracker;
  const tracker = t.type === "file" ? `file ${t.path}` : t.type === "beads" ? `beads (${t.command ?? "bd"})` : "none (the item ids alone)";
  return `config: ${c.configSource ?? "defaults (no --config, $DX_BATCH_CONFIG or ./dx-batch.config.json)"}; tracker: ${tracker}; artifacts: ${c.config.artifact_dir}`;
}

/** `wave_exists` before anything else is written; its remedy depends on that wave's state. */
export async function refuseExistingWave(c: AppContext, waveId: string): Promise<void> {
  if (!existsSync(c.layout.waveDir(waveId))) return;
  throw await waveExists(c, waveId);
}
