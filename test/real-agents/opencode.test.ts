import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { happyScript } from "../fixtures/mock-models/script.js";
import { killGroup, track } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";
import { happyWave, WAVE_TIMEOUT_MS } from "./happy-wave.js";
import { agentSandbox, dxBatch, INSTALL_TIMEOUT_MS, runnerLogs, waveReport, waveStatus, type AgentSandbox } from "./harness.js";

// The real OpenCode CLI (pinned, .cache/agent-clis) against a mock OpenAI Chat Completions API,
// configured as an OpenCode custom provider.

describe("opencode: real OpenCode against a mock Chat Completions API", () => {
  happyWave("opencode", "oc");
});

// Every OpenCode run writes its SQLite store, and two runs at once can find it locked (REFERENCE
// §6; a CI run lost an attempt to it). Here another writer holds the store, as a sibling run
// would, until the first run has failed on it.
const HOLD_STORE = [
  "import sqlite3, sys",
  "c = sqlite3.connect(sys.argv[1], isolation_level=None)",
  "c.execute('BEGIN EXCLUSIVE')",
  "print('held', flush=True)",
  "sys.stdin.read()",
].join("\n");

describe("opencode: its store locked by another writer", () => {
  let sb: AgentSandbox;
  beforeAll(async () => {
    sb = await agentSandbox("opencode", happyScript());
  }, INSTALL_TIMEOUT_MS);
  afterAll(async () => sb.close());

  it(
    "the run that finds the store locked ends agent_transient_error, is run again on opencode uncounted, and the item is approved",
    async () => {
      const holder = track(
        spawn("python3", ["-c", HOLD_STORE, path.join(sb.home, ".local", "share", "opencode", "opencode.db")], {
          detached: true,
          stdio: ["pipe", "pipe", "inherit"],
        }),
      );
      let said = "";
      holder.stdout.on("data", (b: Buffer) => (said += b.toString()));
      await waitFor(() => said.includes("held"), "the store held");
      const wave = dxBatch(sb, ["start", "--wave-id", "w-locked", "--items", "ol-1"]);
      const art = path.join(sb.root, "art");
      const first = await waitFor(
        () => existsSync(art) && readdirSync(art, { recursive: true, encoding: "utf8" }).find((f) => f.endsWith("ol-1.implement.attempt1.outcome.json")),
        "the first implement's outcome",
        { timeoutMs: 120_000, intervalMs: 50 },
      );
      // The first run has failed: let go of the store, as the sibling run would on its exit.
      holder.stdin.end();
      const r = await wave;
      killGroup(holder.pid ?? 0);
      expect(r.code, `exit ${r.code}\nstderr: ${r.stderr}\n${runnerLogs(sb)}\nfirst outcome: ${first}`).toBe(0);
      const s = await waveStatus(sb, "w-locked");
      expect(s.items.map((i) => [i.beads_id, i.status])).toEqual([["ol-1", "approved"]]);
      const report = await waveReport(sb, "w-locked");
      const item = (report.items as { beads_id: string; attempts: { phase: string; provider: string; reason_code: string | null; charged?: boolean }[] }[])[0];
      const attempts = item?.attempts ?? [];
      // Attempt 1 failed on the locked store and was not counted; the rerun on opencode went through.
      expect(attempts[0]).toMatchObject({ phase: "implement", provider: "opencode", reason_code: "agent_transient_error" });
      expect(attempts.slice(1).map((a) => [a.phase, a.provider])).toEqual([
        ["implement", "opencode"],
        ["review", "opencode"],
      ]);
      process.stderr.write(`[real-agents] opencode: locked store -> agent_transient_error, rerun approved in ${r.ms} ms\n`);
    },
    WAVE_TIMEOUT_MS,
  );
});
