import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import { scanMarked } from "../../src/runner/marked-procs.js";
import { cgroupBase, waveCgroups } from "../../src/runner/cgroup.js";
import { readLedgerEvents } from "../../src/store/ledger.js";
import { expectRefusal, runCli } from "../helpers/cli.js";
import type { CliResult } from "../helpers/procs.js";
import { it } from "../helpers/fixtures.js";
import { REPO, makeRepo, parseJson, sandbox, type Sandbox } from "../helpers/world.js";
import { waitFor } from "../helpers/wait.js";
import { filesUnder, type TempDirs } from "../helpers/tmp.js";

// Issue #10's reproductions, end to end through the CLI: hostile agents (symlinked contracts,
// writes into the ledgers, escapes from the process group), another local user squatting the
// state directory, a closed stdout, and credentials crossing between providers.

const HOSTILE = path.join(REPO, "test", "fixtures", "agents", "hostile-agent.mjs");
const T = 150_000;

interface World extends Sandbox {
  repo: string;
  dump: string;
}

function world(tmp: TempDirs, env: Record<string, string> = {}, extra: Record<string, unknown> = {}): World {
  const base = tmp.make("dx-hostile-");
  const repo = makeRepo(path.join(base, "repo"));
  const dump = path.join(base, "dump");
  mkdirSync(dump);
  const root = tmp.make("dx-hostile-roots-");
  const art = path.join(root, "art");
  const provider = (name: string) => ({ command: [process.execPath, HOSTILE, name], stdin: "none", env: { ART: art, DUMP_DIR: dump, ...env } });
  const sb = sandbox(tmp, {
    artifact_dir: art,
    runner_log_dir: path.join(root, "runner"),
    workspace_root: path.join(root, "agents"),
    repo,
    base: "main",
    stall_minutes: 2,
    max_runtime_minutes: 2,
    retry_chain: ["agent-a", "agent-b", "blocked"],
    providers: { "agent-a": provider("agent-a"), "agent-b": provider("agent-b") },
    ...extra,
  });
  return { ...sb, repo, dump };
}

const args = (w: World, ...rest: string[]) => [...rest, "--config", w.configPath];

/** A first start under an artifact dir with no wave names its config, tracker and artifacts on stderr first (issue #13): check that line and drop it. */
function afterFirstRunLine(r: CliResult, w: World, art: string): CliResult {
  const [first, ...rest] = r.stderr.split("\n");
  expect(first, r.stderr).toBe(`config: ${w.configPath}; tracker: none (the item ids alone); artifacts: ${art}`);
  return { ...r, stderr: rest.join("\n") };
}

function roots(w: World): string[] {
  return [w.config.artifact_dir, w.config.runner_log_dir];
}

describe("a hostile agent", () => {
  for (const target of ["secret", "environ"] as const) {
    it(
      `a contract symlinked to ${target === "secret" ? "a secret file" : "/proc/self/environ"} leaves no byte of the target under the roots`,
      async ({ bin, tmp }) => {
        const secretDir = tmp.make("dx-secret-");
        const secret = path.join(secretDir, "token");
        writeFileSync(secret, "sk-SECRETTOKEN-0123456789\n", { mode: 0o600 });
        const w = world(tmp, { LINK_TARGET: target === "secret" ? secret : "/proc/self/environ", MARK_ENV: "envSECRETvalue42" });
        const r = await runCli(bin, args(w, "start", "--items", "lnk-a1", "--wave-id", "w-lnk", "--json"), { cwd: w.root, timeoutMs: T });
        expect(r.code, r.stderr).toBe(0);
        const needles = target === "secret" ? ["sk-SECRET"] : ["envSECRETvalue42", "MARK_ENV="];
        for (const f of roots(w).flatMap(filesUnder)) {
          const text = readFileSync(f, "latin1");
          for (const n of needles) expect(text.includes(n), `${n} in ${f}`).toBe(false);
        }
        // The refusal is recorded, saying where and why.
        const { events } = await readLedgerEvents(w.layout, "w-lnk");
        const first = events.find((e) => e.event === "job_finished" && e.attempt === 1 && e.phase === "implement");
        expect(first && first.event === "job_finished" ? first.contract_error : null).toMatch(/contract_file_unsafe: .*symbolic link/);
      },
      T,
    );
  }

  it(
    "garbage and torn lines appended to its ledger: the wave completes, check exits 0, doctor reports and --fix moves them aside",
    async ({ bin, tmp }) => {
      const w = world(tmp);
      const r = await runCli(bin, args(w, "start", "--items", "grb-a1,ok-b2", "--wave-id", "w-grb", "--json"), { cwd: w.root, timeoutMs: T });
      expect(r.code, r.stderr).toBe(0);
      const { events, foreignFiles } = await readLedgerEvents(w.layout, "w-grb");
      expect(events.filter((e) => e.event === "ledger_foreign_bytes").length).toBeGreaterThanOrEqual(1);
      expect(foreignFiles.length).toBeGreaterThanOrEqual(1);
      // A late write after the wave ended stays at the end of the ledger: readers leave it out.
      writeFileSync(w.layout.itemLedger("w-grb", "grb-a1"), "late garbage\n{not json\n", { flag: "a" });
      const check = await runCli(bin, args(w, "check", "--wave-id", "w-grb", "--json"), { cwd: w.root });
      expect(check.code, check.stderr).toBe(0);
      expect(parseJson(check.stdout)).toMatchObject({ state: "completed" });
      const status = await runCli(bin, args(w, "status", "--wave-id", "w-grb", "--json"), { cwd: w.root });
      expect(status.code, status.stderr).toBe(0);
      const d = await runCli(bin, args(w, "doctor", "--wave-id", "w-grb", "--json"), { cwd: w.root });
      const types = (parseJson(d.stdout) as { issues: { type: string }[] }).issues.map((i) => i.type);
      expect(types).toContain("ledger_foreign_bytes");
      expect(types).toContain("ledger_foreign_file");
      const fix = await runCli(bin, args(w, "doctor", "--wave-id", "w-grb", "--fix", "--json"), { cwd: w.root });
      expect((parseJson(fix.stdout) as { fixed: string[] }).fixed.join("\n")).toMatch(/moved \d+ foreign bytes/);
      // What was moved aside stays as a note (info) until the operator has read and removed it.
      const after = await runCli(bin, args(w, "doctor", "--wave-id", "w-grb", "--json"), { cwd: w.root });
      const doc = parseJson(after.stdout) as { ok: boolean; issues: { type: string; severity: string }[] };
      expect(doc.ok).toBe(true);
      expect(doc.issues.filter((i) => i.severity !== "info")).toEqual([]);
      for (const f of (await readLedgerEvents(w.layout, "w-grb")).foreignFiles) rmSync(f);
      const clean = await runCli(bin, args(w, "doctor", "--wave-id", "w-grb", "--json"), { cwd: w.root });
      expect(clean.code, clean.stdout).toBe(0);
    },
    T,
  );

  it(
    "setsid and double-fork escapees are gone after cancel",
    async ({ bin, tmp }) => {
      const w = world(tmp);
      const start = await runCli(bin, args(w, "start", "--items", "esc-a1", "--wave-id", "w-esc", "--detach"), { cwd: w.root, timeoutMs: T });
      expect(start.code, start.stderr).toBe(0);
      const wave = () => scanMarked().filter((m) => m.wave_id === "w-esc");
      // The agent and its two escapees, the escapees in process groups of their own.
      await waitFor(
        () => {
          const ms = wave();
          const groups = new Set(ms.map((m) => m.pgid));
          return ms.length >= 3 && groups.size >= 3 ? ms : null;
        },
        "the agent and its escapees",
        { timeoutMs: 60_000 },
      );
      // Where cgroup v2 is writable the job runs in its own cgroup, escapees included (cgroup.ts).
      const cgroups = cgroupBase() !== null;
      if (cgroups) expect(waveCgroups(w.config.runner_log_dir, "w-esc").flatMap((g) => g.pids).length).toBeGreaterThanOrEqual(3);
      const c = await runCli(bin, args(w, "cancel", "--wave-id", "w-esc"), { cwd: w.root, timeoutMs: T });
      expect(c.code, c.stderr).toBe(0);
      expect(wave()).toEqual([]);
      // And cancel leaves no cgroup of the wave behind.
      expect(waveCgroups(w.config.runner_log_dir, "w-esc")).toEqual([]);
    },
    T,
  );
});

describe("an exit code that could not be recorded", () => {
  it(
    "a job whose rc file was never written is judged by its valid contract, not counted lost",
    async ({ bin, tmp }) => {
      const w = world(tmp);
      const r = await runCli(bin, args(w, "start", "--items", "rcx-a1", "--wave-id", "w-rc", "--json"), { cwd: w.root, timeoutMs: T });
      expect(r.code, r.stderr).toBe(0);
      const { events } = await readLedgerEvents(w.layout, "w-rc");
      // Each implement run lost its rc file; each is recorded as a clean exit whose contract
      // decides (what follows, such as an empty attempt range, is the contract's business).
      const impl = events.filter((e) => e.event === "job_finished" && e.phase === "implement");
      expect(impl.length).toBeGreaterThanOrEqual(1);
      for (const e of impl) expect(e).toMatchObject({ state: "exited_ok", exit_code: null, runner_reason: null, contract_error: null });
      expect(JSON.stringify(events)).not.toContain("runner_job_lost");
    },
    T,
  );
});

describe("credentials by provider", () => {
  it(
    "a GLM token never reaches a command agent, and a provider env value never reaches the ledger",
    async ({ bin, tmp }) => {
      const w = world(tmp, { GLM_EXTRA_CREDS: "creds-SECRET-31337" });
      const r = await runCli(bin, args(w, "start", "--items", "ok-a1", "--wave-id", "w-env", "--json"), {
        cwd: w.root,
        env: { CC_GLM_AUTH_TOKEN: "glm-SECRET-token", ZAI_API_KEY: "zai-SECRET-key" },
        timeoutMs: T,
      });
      expect(r.code, r.stderr).toBe(0);
      const dumps = readdirSync(w.dump);
      expect(dumps.length).toBeGreaterThanOrEqual(2);
      for (const f of dumps) {
        const text = readFileSync(path.join(w.dump, f), "utf8");
        expect(text).not.toContain("glm-SECRET-token");
        expect(text).not.toContain("zai-SECRET-key");
        expect(text).toContain("GLM_EXTRA_CREDS=creds-SECRET-31337");
      }
      for (const f of roots(w).flatMap(filesUnder)) expect(readFileSync(f, "latin1").includes("creds-SECRET-31337"), f).toBe(false);
      expect(r.stdout).not.toContain("creds-SECRET-31337");
    },
    T,
  );
});

describe("output errors", () => {
  it(
    "`start | head -1` still completes the wave",
    async ({ bin, tmp }) => {
      const w = world(tmp);
      const cmd = `"${process.execPath}" "${bin}" start --config "${w.configPath}" --items ok-a1,ok-b2,ok-c3 --wave-id w-pipe --json | head -1`;
      const r = spawnSync("sh", ["-c", cmd], {
        cwd: w.root,
        encoding: "utf8",
        timeout: T,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" },
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.split("\n").filter((l) => l !== "")).toHaveLength(1);
      const check = await runCli(bin, args(w, "check", "--wave-id", "w-pipe", "--json"), { cwd: w.root });
      expect(check.code, check.stderr).toBe(0);
      expect(parseJson(check.stdout)).toMatchObject({ state: "completed" });
    },
    T,
  );
});

// ---- another local user ------------------------------------------------------------------------

const SQUATTER = "dxsquat";

/** The squatter's uid and gid, creating the user where the tests run as root; null when that cannot be done. */
function squatter(): { uid: number; gid: number } | null {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return null;
  const id = (): { uid: number; gid: number } | null => {
    const u = spawnSync("id", ["-u", SQUATTER], { encoding: "utf8" });
    const g = spawnSync("id", ["-g", SQUATTER], { encoding: "utf8" });
    return u.status === 0 && g.status === 0 ? { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) } : null;
  };
  const have = id();
  if (have !== null) return have;
  if (spawnSync("useradd", ["--no-create-home", "--system", SQUATTER]).status !== 0) return null;
  return id();
}

const who = squatter();
if (who === null) console.warn(`[hostile.test] SKIPPED the second-user cases: not root, or useradd ${SQUATTER} failed`);

describe.skipIf(who === null)("another local user", () => {
  it(
    "a squatter's pre-created artifact dir with a planted symlink is refused with artifact_dir_insecure; the target is unchanged",
    async ({ bin, tmp }) => {
      if (who === null) return;
      const base = tmp.make("dx-squat-");
      chmodSync(base, 0o755);
      const shared = path.join(base, "shared"); // like /tmp: world-writable, sticky
      mkdirSync(shared);
      chmodSync(shared, 0o1777);
      const targetDir = tmp.make("dx-squat-target-");
      const target = path.join(targetDir, "root-owned");
      writeFileSync(target, "line one\nline two\n", { mode: 0o644 });
      chmodSync(targetDir, 0o755);
      const before = readFileSync(target, "utf8");
      const art = path.join(shared, "dx-batch");
      execFileSync("sh", ["-c", `mkdir -p "${art}/ledgers/w-sq" && ln -s "${target}" "${art}/ledgers/w-sq/ok-a1.ledger.jsonl" && chmod -R 777 "${art}"`], {
        uid: who.uid,
        gid: who.gid,
      });
      const w = world(tmp, {}, { artifact_dir: art });
      const r = await runCli(bin, args(w, "start", "--items", "ok-a1", "--wave-id", "w-sq"), { cwd: w.root, timeoutMs: T });
      const msg = expectRefusal(afterFirstRunLine(r, w, art), "artifact_dir_insecure");
      expect(msg).toContain(art);
      expect(r.stderr).toMatch(/remedy: /);
      expect(readFileSync(target, "utf8")).toBe(before);
      expect(statSync(target).mode & 0o777).toBe(0o644);
    },
    T,
  );

  it(
    "a group- or world-writable directory of our own under the root is refused too, naming the fix",
    async ({ bin, tmp }) => {
      const w = world(tmp);
      mkdirSync(path.join(w.config.artifact_dir, "waves"), { recursive: true });
      chmodSync(w.config.artifact_dir, 0o700);
      chmodSync(path.join(w.config.artifact_dir, "waves"), 0o777);
      const r = await runCli(bin, args(w, "start", "--items", "ok-a1", "--wave-id", "w-ww"), { cwd: w.root, timeoutMs: T });
      expectRefusal(afterFirstRunLine(r, w, w.config.artifact_dir), "artifact_dir_insecure");
      expect(r.stderr).toContain(`chmod 700 ${path.join(w.config.artifact_dir, "waves")}`);
    },
    T,
  );
});

// ---- a full disk ---------------------------------------------------------------------------------

const canMount = typeof process.getuid === "function" && process.getuid() === 0;
if (!canMount) console.warn("[hostile.test] SKIPPED the disk-full case: mounting a tmpfs needs root");

describe.skipIf(!canMount)("a full disk", () => {
  it(
    "a small tmpfs fills mid-wave: paused disk_full; after space is freed, resume completes and doctor reports nothing",
    async ({ bin, tmp }) => {
      const w = world(tmp);
      const art = w.config.artifact_dir;
      mkdirSync(art, { recursive: true, mode: 0o700 });
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", art]);
      try {
        const r = await runCli(bin, args(w, "start", "--items", "fill-a1,ok-b2", "--wave-id", "w-full", "--max-parallel", "1"), { cwd: w.root, timeoutMs: T });
        expect(r.code, r.stderr).toBe(2);
        const check = await runCli(bin, args(w, "check", "--wave-id", "w-full", "--json"), { cwd: w.root });
        expect(check.code, check.stderr).toBe(2);
        expect(parseJson(check.stdout)).toMatchObject({ state: "paused", reason_code: "disk_full", next_action: "free_disk_space_then_resume" });
        rmSync(path.join(art, "filler"));
        const resume = await runCli(bin, args(w, "resume", "--wave-id", "w-full"), { cwd: w.root, timeoutMs: T });
        expect(resume.code, resume.stderr).toBe(0);
        const done = await runCli(bin, args(w, "check", "--wave-id", "w-full", "--json"), { cwd: w.root });
        expect(parseJson(done.stdout)).toMatchObject({ state: "completed" });
        const d = await runCli(bin, args(w, "doctor", "--wave-id", "w-full", "--json"), { cwd: w.root });
        const issues = (parseJson(d.stdout) as { issues: { type: string; severity: string }[] }).issues;
        expect(issues.filter((i) => i.type !== "state_root_in_tmp")).toEqual([]);
        expect(d.code, d.stdout).toBe(0);
      } finally {
        spawnSync("umount", ["-l", art]);
      }
    },
    T,
  );
});
