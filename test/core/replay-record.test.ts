import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ledgerFiles } from "../../src/store/ledger.js";
import { waitFor } from "../helpers/wait.js";
import { cleanupAll, E2E, E2E_TIMEOUT_MS, REPO } from "../helpers/world.js";
import { tokenise } from "./replay-fixtures.js";

// RECORDER, not a check: runs real waves with the built CLI and the scripted agent, and writes
// their ledgers and final wave_state.json to test/fixtures/ledgers/<case>/ for
// test/core/replay-ledgers.test.ts. Skipped unless DX_RECORD_LEDGERS=1:
//
//   npm run build && DX_RECORD_LEDGERS=1 npx vitest run test/core/replay-record.test.ts
//
// The world's temp root, this checkout and the node binary are replaced by tokens in every file
// (see replay-fixtures.ts), so the fixtures name no path of the machine that recorded them.

const OUT = path.join(REPO, "test", "fixtures", "ledgers");

afterEach(cleanupAll);

function save(w: E2E, wave: string, name: string): void {
  const dir = path.join(OUT, name);
  rmSync(dir, { recursive: true, force: true });
  const waveDir = w.layout.waveDir(wave);
  const files = [...ledgerFiles(w.layout, wave).map((f) => f.file), w.layout.waveState(wave)];
  for (const f of files) {
    const rel = f.startsWith(waveDir) ? path.relative(waveDir, f) : path.join("items", path.basename(f));
    const to = path.join(dir, rel);
    mkdirSync(path.dirname(to), { recursive: true });
    copyFileSync(f, to);
    writeFileSync(to, tokenise(readFileSync(to, "utf8"), w.root, REPO, process.execPath));
  }
}

describe.skipIf(process.env.DX_RECORD_LEDGERS !== "1")("record ledgers for replay", { timeout: E2E_TIMEOUT_MS }, () => {
  it("crash: SIGKILL of the controller mid-wave, then resume", async () => {
    const items = ["cr-1", "cr-2"];
    const w = new E2E({ items, scenario: { default: { implement: { sleep_ms: 400 } } } });
    const proc = w.cli("start", ["--items", items.join(","), "--wave-id", "w-crash"]);
    await w.waitEvent("w-crash", (e) => e.event === "job_started", "a job_started");
    process.kill(proc.pid, "SIGKILL");
    await proc.exited;
    await w.expectExit("resume", ["--wave-id", "w-crash"], 0);
    save(w, "w-crash", "crash");
  });

  it("revision: the first review asks for changes, the second approves", async () => {
    const w = new E2E({ items: ["rv-1"], scenario: { items: { "rv-1": { review: [{ verdict: "REVISION_REQUIRED" }, { verdict: "APPROVED" }] } } } });
    await w.expectExit("start", ["--items", "rv-1", "--wave-id", "w-revision"], 0);
    save(w, "w-revision", "revision");
  });

  it("quota fallback: agent-a hits its quota, the attempt goes to agent-b", async () => {
    const w = new E2E({
      items: ["qf-1"],
      scenario: { items: { "qf-1": { implement: { by_provider: { "agent-a": { quota: true } } } } } },
      config: { max_attempts: 1, provider_cooldown_minutes: 0.05 },
    });
    await w.expectExit("start", ["--items", "qf-1", "--wave-id", "w-quota"], 0);
    save(w, "w-quota", "quota-fallback");
  });

  it("cancel: dx-batch cancel while jobs run", async () => {
    const items = ["cn-1", "cn-2"];
    const w = new E2E({ items, scenario: { default: { implement: { hang: true } } } });
    const proc = w.cli("start", ["--items", items.join(","), "--wave-id", "w-cancel"]);
    await waitFor(async () => (await w.events("w-cancel")).filter((e) => e.event === "job_started").length === 2, "both jobs started");
    const c = await w.run("cancel", ["--wave-id", "w-cancel"]);
    expect(c.code).toBe(0);
    await proc.exited;
    save(w, "w-cancel", "cancel");
  });
});
