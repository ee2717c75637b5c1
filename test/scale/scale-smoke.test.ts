import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { it } from "../helpers/fixtures.js";
import { spawnNode, tail, waitExit } from "../helpers/procs.js";
import { sleep } from "../helpers/wait.js";
import {
  dispatchViolations,
  executionViolations,
  groupViolations,
  jobGroups,
  missingOutcomes,
  readWaveRecord,
  snapshotViolations,
  strayProcesses,
  terminalViolations,
  writeAheadViolations,
} from "../reliability/invariants.js";
import { makeFixture, PROVIDERS, readJournal, type ItemPlan } from "../reliability/plan.js";

// The scale smoke run (issue #14, "Must show"): one `dx-batch start` of 200 instant agents
// (test/scale/instant-agent.sh: a shell script that journals its run like the scripted agent and
// commits its own work) at --max-parallel 16, worktrees created from the repository, no review. It checks
// correctness only, the invariants a faster controller (group commit, fewer spawns, checkpoint
// snapshots) must keep at scale; how long it takes is the benchmarks' business (bench/scale.mjs),
// never asserted here. The ceiling below only stops a hung run.

/** A hang guard, not a duration check: on 2 loaded cores the run takes a fraction of it. */
const CEILING_MS = 300_000;
/** How long a wrapper may take to be reaped after the controller exited. */
const EXIT_GRACE_MS = 5_000;
const AGENT = path.join(path.dirname(fileURLToPath(import.meta.url)), "instant-agent.sh");

// The second run is wide rather than long: more items in flight than the ledger writer keeps
// descriptors open (32), so one group commit spans more files than it holds; a writer that evicted
// the file it had just opened failed such a wave at once (EBADF).
smoke({ items: 200, maxParallel: 16, wave: "scale-smoke" });
smoke({ items: 48, maxParallel: 48, wave: "wide-smoke" });

function smoke({ items: ITEMS, maxParallel: MAX_PARALLEL, wave: WAVE }: { items: number; maxParallel: number; wave: string }): void {
  it(
    `${ITEMS} instant agents at --max-parallel ${MAX_PARALLEL}: all approved, nothing lost, nothing twice, nothing left running`,
    async ({ bin, tmp }) => {
      const root = tmp.make("dx-scale-smoke-");
      const tag = `${WAVE}-${process.pid}-${Date.now()}`;
      const width = String(ITEMS).length;
      // Each agent commits its own one-line file at once, as real agents do, and exits.
      const plan: ItemPlan[] = Array.from({ length: ITEMS }, (_, i) => ({
        id: `smoke-${String(i + 1).padStart(width, "0")}`,
        deps: [],
        attempts: [{ implement: "completed", verdict: "APPROVED", implement_ms: 0, review_ms: 0 }],
      }));
      const recordDir = path.join(root, "records");
      const provider = (name: string): Record<string, unknown> => ({ command: [AGENT, name], stdin: "none", env: { SMOKE_RECORD_DIR: recordDir } });
      const fx = makeFixture({
        root,
        tag,
        items: plan,
        config: { max_parallel: MAX_PARALLEL, providers: Object.fromEntries(PROVIDERS.map((p) => [p, provider(p)])) },
      });
      expect(path.dirname(fx.journalPath)).toBe(recordDir);
      const itemsFile = path.join(root, "items.txt");
      writeFileSync(itemsFile, plan.map((p) => p.id).join("\n") + "\n");

      const p = spawnNode(
        bin,
        ["start", "--config", fx.configPath, "--items-file", itemsFile, "--wave-id", WAVE, "--max-parallel", String(MAX_PARALLEL), "--no-review"],
        { cwd: root, env: fx.env },
      );
      const exit = await waitExit(p, CEILING_MS, "scale smoke controller");
      expect(exit.code, `start exited ${String(exit.code ?? exit.signal)}\n${tail(exit.stderr)}`).toBe(0);

      // No process of this run may outlive it (beyond a wrapper being reaped).
      let stray = strayProcesses(tag);
      for (const deadline = Date.now() + EXIT_GRACE_MS; stray.length > 0 && Date.now() < deadline; stray = strayProcesses(tag)) await sleep(50);
      expect(stray).toEqual([]);

      const w = await readWaveRecord(fx.artifactDir, WAVE);
      const journal = readJournal(fx.journalPath);

      // Every item approved at its first attempt, in the replay and in the snapshot on disk.
      expect(terminalViolations(w, "completed")).toEqual([]);
      expect(w.replay.items).toHaveLength(ITEMS);
      const notApproved = w.replay.items.filter((it) => it.status !== "approved" || it.attempt !== 1);
      expect(notApproved.map((it) => `${it.beads_id} ${it.status} (${it.reason_code}) after ${it.attempt} attempt(s)`)).toEqual([]);
      const snap = JSON.parse(w.snapshotText) as { status: string; stats: { approved: number } };
      expect(snap.status).toBe("completed");
      expect(snap.stats.approved).toBe(ITEMS);

      // The ledgers: seqs 1..n with no gap or repeat, and no torn tail after a clean end.
      const seqs = w.events.map((e) => e.seq).sort((a, b) => a - b);
      const gaps = seqs.flatMap((s, i) => (s === i + 1 ? [] : [`position ${i + 1} holds seq ${s}`])).slice(0, 5);
      expect(gaps).toEqual([]);
      expect(w.tornTails).toBe(0);

      // Nothing twice: one dispatch, one start and one finish per (item, phase, attempt), and one
      // agent process per attempt as the agents themselves recorded it.
      expect(dispatchViolations(w)).toEqual([]);
      expect(executionViolations(w, journal)).toEqual([]);
      expect(journal).toHaveLength(ITEMS);
      const count = (name: string): number => w.events.filter((e) => e.event === name).length;
      expect({ dispatched: count("item_dispatched"), started: count("job_started"), finished: count("job_finished") }).toEqual({
        dispatched: ITEMS,
        started: ITEMS,
        finished: ITEMS,
      });
      // The agents committed their work: dx-batch had nothing left to commit for them.
      expect(count("auto_commit")).toBe(0);

      // Nothing lost: every finished attempt's outcome file exists and is JSON.
      expect(missingOutcomes(w)).toEqual([]);
      const finished = w.events.filter((e) => e.event === "job_finished");
      for (const e of finished) expect(() => JSON.parse(readFileSync(e.outcome_path, "utf8")) as unknown, e.outcome_path).not.toThrow();

      // The snapshot is the fold of the ledgers, byte for byte, and never ahead of them.
      expect(snapshotViolations(w)).toEqual([]);
      expect(await writeAheadViolations(fx.artifactDir, WAVE, "the wave's end")).toEqual([]);

      // No job's process group is alive.
      const groups = groupViolations(jobGroups(fx.artifactDir, fx.runnerLogDir, w), tag);
      expect(groups.violations).toEqual([]);
      // (A pgid may repeat if the OS reused a pid, so only "some were checked" is certain.)
      expect(groups.checked).toBeGreaterThan(0);

      // The figure is printed for whoever reads the log, never asserted.
      const first = w.events[0];
      const last = w.events[w.events.length - 1];
      const ms = first && last ? Date.parse(last.at) - Date.parse(first.at) : 0;
      process.stdout.write(`${WAVE}: ${ITEMS} items, ${w.events.length} events, ${ms} ms from the first event to the last\n`);
    },
    CEILING_MS + 60_000,
  );
}
