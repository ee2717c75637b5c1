import { randomBytes } from "node:crypto";
import path from "node:path";
import type { ResolvedConfig } from "../config/types.js";
import type { ItemSeed } from "../core/events.js";
import { defaultWaveId } from "../core/ids.js";
import type { ItemState } from "../core/state.js";
import { toPolicy } from "../config/policy.js";
import { DxError } from "../errors.js";
import { createLayout } from "../store/layout.js";
import type { AppContext, ConfigFlags } from "./context.js";
import type { Progress } from "./progress-port.js";
import { readWave } from "./read-wave.js";
import { refuseBadRepo, refuseUnknownProviders } from "./refuse-early.js";
import { configForResume } from "./resume.js";
import { launchWave, refuseExistingWave } from "./start.js";

// `dx-batch retry`: a new wave holding the items an earlier wave left blocked or failed, on that
// wave's recorded configuration (flags override it; redacted secrets come from today's config, as
// for resume). Each item's first prompt carries what the earlier wave learnt: the last review's
// findings and the last failure.

export interface RetryInput {
  failed: boolean;
  blocked: boolean;
  newWaveId?: string | undefined;
  detach: boolean;
  keepFailed: boolean;
  flags: ConfigFlags;
}

/** Which items a retry takes: both kinds unless one is asked for. */
export function retryItems(items: readonly ItemState[], o: { failed: boolean; blocked: boolean }): ItemState[] {
  const both = !o.failed && !o.blocked;
  return items.filter((it) => (it.status === "failed" && (both || o.failed)) || (it.status === "blocked" && (both || o.blocked)));
}

/** The seed of a retried item: its title, its dependencies among the retried items, and its carry. */
export function retrySeed(it: ItemState, retried: ReadonlySet<string>): ItemSeed {
  const reviews = it.history.filter((h) => h.phase === "review" && h.findings.length > 0);
  const lastReview = reviews[reviews.length - 1];
  const implements_ = it.history.filter((h) => h.phase === "implement" && h.summary !== null);
  return {
    id: it.beads_id,
    title: it.title,
    depends_on: it.depends_on.filter((d) => retried.has(d)),
    carry: {
      findings: lastReview ? [...lastReview.findings] : [...it.carry.findings],
      failure: it.error === null ? `${it.reason_code}` : `${it.reason_code}: ${it.error}`,
      summary: implements_[implements_.length - 1]?.summary ?? it.carry.summary,
    },
  };
}

/** The recorded config, then today's secrets and artifact dir, then the flags given to retry. */
export function retryConfig(recorded: ResolvedConfig, current: ResolvedConfig, flags: ConfigFlags, cwd: string): ResolvedConfig {
  const base = configForResume(recorded, current);
  const over: Partial<ResolvedConfig> = {};
  if (flags.max_parallel !== undefined) over.max_parallel = flags.max_parallel;
  if (flags.max_attempts !== undefined) over.max_attempts = flags.max_attempts;
  if (flags.stall_minutes !== undefined) over.stall_minutes = flags.stall_minutes;
  if (flags.exec_process_cap !== undefined) over.exec_process_cap = flags.exec_process_cap;
  if (flags.require_review !== undefined) over.require_review = flags.require_review;
  if (flags.repo !== undefined) over.repo = path.resolve(cwd, flags.repo);
  if (flags.base !== undefined) over.base = flags.base;
  return { ...base, ...over };
}

export async function retryWave(c: AppContext, sourceId: string, input: RetryInput, progress: Progress): Promise<number> {
  const w = await readWave(c.layout, sourceId);
  if (!w)
    throw new DxError("wave_not_found", `no wave ${sourceId} in ${c.layout.wavesDir()}`, { remedy: "check --wave-id, or leave it out for the newest wave" });
  const picked = retryItems(w.state.items, input);
  const kinds = input.failed === input.blocked ? "blocked or failed" : input.failed ? "failed" : "blocked";
  if (picked.length === 0) {
    throw new DxError("no_items", `wave ${sourceId} has no ${kinds} items to retry`, { remedy: `see dx-batch report --wave-id ${sourceId}` });
  }
  const config = retryConfig(w.state.config, c.config, input.flags, c.cwd);
  const c2: AppContext = { ...c, config, layout: createLayout(config.artifact_dir) };
  const waveId = input.newWaveId ?? defaultWaveId(new Date().toISOString(), randomBytes(2).toString("hex"));
  refuseUnknownProviders(config, toPolicy(config));
  await refuseBadRepo(config.repo);
  await refuseExistingWave(c2, waveId);
  const ids = new Set(picked.map((it) => it.beads_id));
  progress.log(`retry: new wave ${waveId} with ${picked.length} ${kinds} item(s) of ${sourceId}: ${[...ids].join(", ")}`);
  return launchWave(
    c2,
    waveId,
    picked.map((it) => retrySeed(it, ids)),
    { detach: input.detach, keepFailed: input.keepFailed },
    progress,
  );
}
