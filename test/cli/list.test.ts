import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { latestWave, waveIds } from "../../src/app/latest-wave.js";
import { Ledger } from "../helpers/events.js";
import { buildCli } from "../helpers/build.js";
import { expectRefusal, runCli } from "../helpers/cli.js";
import { killAllChildren, sleeper } from "../helpers/procs.js";
import { TempDirs } from "../helpers/tmp.js";
import { holdControllerLock, parseJson, sandbox, writeWave, type Sandbox } from "../helpers/world.js";

// `dx-batch list` (issue #13) over waves written through the store API: newest first, the fields
// of `check --json` plus created_at, completed waves older than 30 days only with --all, a wave
// that cannot be read listed with its reason; and the newest wave as the default of the read
// commands.

const tmp = new TempDirs();
let bin = "";
let sb: Sandbox;
const DAY = 24 * 60 * 60_000;
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
const cli = (...args: string[]) => runCli(bin, [...args, "--config", sb.configPath], { cwd: sb.root });

const completed = (start: string) =>
  new Ledger({ items: ["bd-a1"], start }).start().implement("bd-a1", "opencode", "completed").review("bd-a1", "cc-glm", "APPROVED");
const running = (start: string) => new Ledger({ items: ["bd-a1", "bd-b2"], start }).start().dispatch("bd-a1", "implement", "opencode").jobStarted("bd-a1");

beforeAll(async () => {
  bin = buildCli();
  sb = sandbox(tmp);
  writeWave(sb, "old-done", completed(ago(40 * DAY)).events);
  writeWave(sb, "old-running", running(ago(40 * DAY)).events);
  writeWave(sb, "recent-done", completed(ago(2 * DAY)).events);
  writeWave(sb, "live", running(ago(60 * 60_000)).events);
  holdControllerLock(sb, "live", await sleeper());
  writeWave(sb, "broken", running(ago(3 * DAY)).events);
  // A bad line in the middle of a ledger: the wave cannot be loaded (ledger_corrupt).
  const ledger = sb.layout.waveLedger("broken");
  const lines = readFileSync(ledger, "utf8").split("\n");
  writeFileSync(ledger, [lines[0], "{not json", ...lines.slice(1)].join("\n"));
  rmSync(sb.layout.waveState("broken"));
}, 180_000);
afterAll(async () => {
  await killAllChildren();
  tmp.cleanup();
});

interface Row {
  wave_id: string;
  state: string;
  reason_code: string;
  created_at: string | null;
  [k: string]: unknown;
}

describe("list", () => {
  it("--json: newest first, check --json fields plus created_at, old completed waves hidden", async () => {
    const r = await cli("list", "--json");
    expect(r.code, r.stderr).toBe(0);
    const rows = parseJson(r.stdout) as Row[];
    expect(rows.map((w) => w.wave_id)).toEqual(["live", "recent-done", "broken", "old-running"]);
    expect(rows.map((w) => [w.state, w.reason_code])).toEqual([
      ["running", "wave_running"],
      ["completed", "wave_completed"],
      ["unreadable", "ledger_corrupt"],
      ["running", "controller_dead"],
    ]);
    for (const row of rows.filter((w) => w.state !== "unreadable")) {
      const check = await cli("check", "--json", "--wave-id", row.wave_id);
      const { created_at, completed_at, ...rest } = row;
      expect(rest, row.wave_id).toEqual(parseJson(check.stdout));
      expect(typeof created_at).toBe("string");
      expect(completed_at === null || typeof completed_at === "string").toBe(true);
    }
    const live = rows[0];
    expect(live?.controller).toMatchObject({ alive: true });
  });

  it("--all shows completed waves older than 30 days too", async () => {
    const r = await cli("list", "--json", "--all");
    expect((parseJson(r.stdout) as Row[]).map((w) => w.wave_id)).toEqual(["live", "recent-done", "broken", "old-running", "old-done"]);
  });

  it("text: one line per wave with state, reason, age, counts and controller liveness", async () => {
    const r = await cli("list");
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(
      /^live\s+running\s+wave_running\s+\S+Z\s+(59m|1h00m) 2 items: 0 approved, 0 blocked, 0 failed, 0 cancelled, 2 open \| controller \d+@\S+ alive$/,
    );
    expect(lines[1]).toMatch(/^recent-done\s+completed\s+wave_completed\s+\S+\s+2d0h 1 items: 1 approved/);
    expect(lines[2]).toMatch(/^broken\s+unreadable\s+ledger_corrupt\s+/);
    expect(lines[3]).toMatch(/^old-running\s+running\s+controller_dead\s+\S+\s+40d0h .* \| no controller$/);
  });

  it("an empty artifact dir lists nothing, and says so", async () => {
    const empty = sandbox(tmp);
    const j = await runCli(bin, ["list", "--json", "--config", empty.configPath], { cwd: empty.root });
    expect(j.code).toBe(0);
    expect(parseJson(j.stdout)).toEqual([]);
    const t = await runCli(bin, ["list", "--config", empty.configPath], { cwd: empty.root });
    expect(t.stdout).toMatch(/^no waves in /);
  });
});

describe("the newest wave", () => {
  it("latestWave() is the most recently created wave", () => {
    expect(waveIds(sb.art)).toEqual(["broken", "live", "old-done", "old-running", "recent-done"]);
    expect(latestWave(sb.art)).toBe("live");
    expect(latestWave(`${sb.root}/nowhere`)).toBeNull();
  });
});

describe("read commands default to the newest wave (SPEC §15.2)", () => {
  it.each([
    ["status", "--json"],
    ["check", "--json"],
    ["report", "--format", "json"],
  ])("%s without --wave-id reads the newest wave and names it on stderr", async (...args) => {
    const implied = await cli(...args);
    const explicit = await cli(...args, "--wave-id", "live");
    expect(implied.code, implied.stderr).toBe(explicit.code);
    expect(implied.stdout).toBe(explicit.stdout);
    // The note names the wave it chose (app/wave-arg.ts); with --wave-id there is none.
    expect(implied.stderr).toMatch(/^using the newest wave: live \(pass --wave-id to choose another\)$/m);
    expect(explicit.stderr).not.toMatch(/newest wave/);
  });

  it("with no wave at all: wave_not_found", async () => {
    const empty = sandbox(tmp);
    expectRefusal(await runCli(bin, ["status", "--config", empty.configPath], { cwd: empty.root }), "wave_not_found");
  });
});
