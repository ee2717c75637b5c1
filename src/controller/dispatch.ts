import type { DispatchIntent } from "../core/plan.js";
import { ItemReason, WaveReason, alreadyApproved, claimedByOtherWave } from "../core/reasons.js";
import { isDxError } from "../errors.js";
import type { ItemState } from "../core/state.js";
import { isDiskFull } from "../errors.js";
import type { WorktreeResult } from "./ports.js";
import { attemptPrompt, type ReviewMaterial, type WorkerReview } from "./prompts.js";
import { firstChecks, jobRefOf, type Shell } from "./shell.js";

// Dispatch: lease and claim first, then the worktree and the prompt, then the durable
// `item_dispatched` event, and only then the job (SPEC §8).

/** Carry out one intent of the plan. `takeEarly` hands over the worktree resolved ahead of time, if any. */
export async function dispatchIntent(sh: Shell, intent: DispatchIntent, takeEarly: () => Promise<WorktreeResult | null> | undefined): Promise<void> {
  const files = sh.deps.files;
  const item = sh.item(intent.item_id);
  const lease = files.acquireLease(intent.item_id, intent.attempt);
  if (!lease.ok) {
    sh.deps.log(`${intent.item_id}: lease for attempt ${intent.attempt} is held by ${lease.holder}; will retry`);
    return;
  }
  const claim = files.claim(intent.item_id);
  if (!claim.ok) {
    files.releaseLease(intent.item_id, intent.attempt);
    sh.looks.forget(intent.item_id);
    await sh.apply({
      event: "item_settled",
      item_id: intent.item_id,
      status: "blocked",
      reason_code: claimedByOtherWave(claim.byWave),
      error: `item is claimed by live wave ${claim.byWave}`,
    });
    return;
  }
  // SPEC §15.4: an item an earlier wave approved is not run again, unless --redo. Read under the
  // claim, so a wave approving it right now (it holds the claim until it ends) has written it.
  const state = sh.session.state;
  const prior = item.attempt === 0 && state.policy.redo !== true ? (files.approvedBy?.(intent.item_id) ?? null) : null;
  if (prior !== null && prior !== state.wave_id) {
    files.releaseLease(intent.item_id, intent.attempt);
    sh.looks.forget(intent.item_id);
    await sh.apply({
      event: "item_settled",
      item_id: intent.item_id,
      status: "approved",
      reason_code: alreadyApproved(prior),
      error: `already approved by wave ${prior}; start --redo runs it again`,
    });
    return;
  }
  let worktree = item.worktree;
  let base = item.base_commit;
  let created = false;
  if (worktree === null) {
    const pre = await takeEarly();
    const w = pre?.ok ? pre : await sh.deps.workspace.resolve(intent.item_id);
    if (!w.ok) {
      files.releaseLease(intent.item_id, intent.attempt);
      sh.looks.forget(intent.item_id);
      await sh.apply({ event: "item_settled", item_id: intent.item_id, status: w.status, reason_code: w.reason_code, error: w.detail });
      return;
    }
    worktree = w.path;
    base = w.base_commit;
    created = w.created === true;
  }
  const issue = await sh.issue(intent.item_id);
  const ws = sh.deps.workspace;
  // HEAD now: an implement attempt's own range starts here; a review is shown base..HEAD.
  const head = await ws.head(worktree).catch(() => null);
  // HEAD unreadable (null) is no fact to start from: the runner then looks itself.
  if (created && head !== null) sh.looks.clean(intent.item_id, head);
  else sh.looks.confirm(intent.item_id, head);
  if (ws.prepare !== undefined)
    await ws.prepare(worktree).catch((e: unknown) => sh.deps.log(`${intent.item_id}: cannot prepare ${worktree}/.dx-batch: ${String(e)}`));
  const contract_file = files.contractPath(intent.item_id, intent.phase, intent.attempt, ws.prepare !== undefined ? worktree : null);
  const review = intent.phase === "review" ? await reviewMaterial(sh, item, worktree, base, head) : null;
  const text = attemptPrompt(
    { item, phase: intent.phase, attempt: intent.attempt, worktree, base_commit: base, head, contract_file, review },
    issue,
    sh.deps.templates,
  );
  const prompt = files.writePrompt(intent.item_id, intent.phase, intent.attempt, text);
  // The claim and the prompt must outlive a machine crash before item_dispatched does: synced
  // together, off the loop, so other items' exits and dispatches go on meanwhile.
  await files.makeDurable?.(claim.path === undefined ? [prompt] : [claim.path, prompt]);
  await sh.apply({
    event: "item_dispatched",
    item_id: intent.item_id,
    phase: intent.phase,
    attempt: intent.attempt,
    provider: intent.provider,
    chain_index: intent.chain_index,
    run_instance: sh.deps.newRunInstance(),
    lease_key: lease.key,
    worktree,
    base_commit: base,
    quota: intent.quota,
    skipped: intent.skipped,
    ...(intent.phase === "implement" ? { head_at_dispatch: head } : { review_range: { from: base, to: head } }),
  });
}

/** What a reviewer is shown: the item's whole change base..HEAD as a diff, and the last attempt's own range. */
async function reviewMaterial(
  sh: Shell,
  item: ItemState,
  worktree: string,
  base: string | null,
  head: string | null,
): Promise<ReviewMaterial | WorkerReview | null> {
  const ws = sh.deps.workspace;
  const lastImpl = [...item.history].reverse().find((r) => r.phase === "implement");
  // The range the worker measured came back with its result; the diff is its to make.
  if (ws.diffOnWorker === true) return { on_worker: true, attempt_range: lastImpl?.range ?? null };
  if (ws.diff === undefined || head === null) return null;
  try {
    const d = await (sh.diffs.take(item.beads_id, base, head) ?? ws.diff(worktree, base, head));
    return { stat: d.stat, patch: d.patch, bytes: d.bytes, truncated: d.truncated, attempt_range: lastImpl?.range ?? null };
  } catch (e) {
    sh.deps.log(`${item.beads_id}: cannot diff ${base ?? "(root)"}..${head}: ${String(e)}`);
    return null;
  }
}

/** Start the job of a dispatched attempt; a spawn failure fails the item (SPEC §6). */
export async function startJob(sh: Shell, it: ItemState): Promise<void> {
  if (it.run_instance === null || it.phase === null || it.provider === null || it.worktree === null) return;
  const files = sh.deps.files;
  const key = { item_id: it.beads_id, phase: it.phase, attempt: it.attempt, provider: it.provider, run_instance: it.run_instance };
  const ref = jobRefOf(sh.deps, key, sh.deps.workspace.prepare !== undefined ? it.worktree : null);
  const look = sh.looks.take(key.item_id);
  // Track before starting, so an exit reported during start() is not missed.
  sh.jobs.add({
    ref,
    item_id: key.item_id,
    phase: key.phase,
    attempt: key.attempt,
    provider: key.provider,
    started_at: null,
    pid: null,
    own: true,
    ...firstChecks(sh.deps, true),
  });
  try {
    const started = await sh.deps.runner.start({
      job_id: ref.job_id,
      item_id: key.item_id,
      wave_id: sh.session.state.wave_id,
      phase: key.phase,
      attempt: key.attempt,
      provider: key.provider,
      run_instance: key.run_instance,
      worktree: it.worktree,
      // Resolved as the top of its checkout (workspace.resolve): the runner need not ask git.
      worktree_toplevel: it.worktree,
      ...(look !== undefined ? { worktree_look: look } : {}),
      prompt_file: files.promptPath(key.item_id, key.phase, key.attempt),
      contract_file: ref.contract_file ?? files.contractPath(key.item_id, key.phase, key.attempt),
    });
    // A remote job's pid belongs to another host: never recorded here, never signalled (SPEC §15.4).
    const remote = started.remote === true;
    if (!remote)
      files.registerPid({ pid: started.pid, pgid: started.pgid, item_id: key.item_id, phase: key.phase, attempt: key.attempt, run_instance: key.run_instance });
    const tracked = sh.jobs.get(key.run_instance);
    if (tracked) {
      tracked.pid = remote ? null : started.pid;
      tracked.started_at = started.started_at;
    }
    // Nothing waits on it: durable with the next commit (a crash before that re-attaches the job).
    await sh.record({ event: "job_started", ...key, pid: started.pid, pgid: started.pgid, started_at: started.started_at, log_path: started.log_path });
  } catch (err) {
    sh.jobs.remove(key.run_instance);
    // A full disk is the machine's state, not this item's failure: the wave pauses (run-wave.ts).
    if (isDiskFull(err)) throw err;
    // Not the item's fault: it stays dispatched and not started; the wave pauses (the runner says
    // why) and resume starts it under the same run_instance.
    if (isDxError(err) && err.code === WaveReason.queue_unavailable) return;
    await sh.apply({
      event: "item_settled",
      item_id: key.item_id,
      status: "failed",
      reason_code: key.phase === "implement" ? ItemReason.dispatch_failed : ItemReason.review_dispatch_failed,
      error: err instanceof Error ? err.message : String(err),
    });
  }
}
