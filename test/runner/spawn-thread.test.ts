import { execFileSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createBuiltinRunner } from "../../src/runner/builtin.js";
import type { JobSpec } from "../../src/runner/port.js";
import { WORKER_FILE, spawnThread, spawnThreadUp, startSpawnThread } from "../../src/runner/spawn-thread.js";
import { execGitHere, git as gitRun } from "../../src/workspace/git.js";
import { REPO } from "../helpers/build.js";
import { cleanup, fixture, fixtureEnv, git, makeWorkspace, pidAlive, tempDir, trackGroup, waitFor } from "./helpers/env.js";

// The spawn thread (src/runner/spawn-thread.ts): starts made from a worker thread must give what
// starts made on the loop give (pid, own process group, inherited descriptors, exit heard), and a
// process that uses it must still end on its own. The thread runs the compiled worker
// (dist/runner/spawn-thread-worker.js), which `npm test` builds first.

afterEach(cleanup);

beforeAll(async () => {
  expect(existsSync(WORKER_FILE), "dist/ is built (npm test builds it first)").toBe(true);
  startSpawnThread({ env: {} });
  expect(await spawnThreadUp()).toBe(true);
});

describe("the spawn thread", () => {
  it("runs git with the same result as a run on the loop", async () => {
    const dir = tempDir();
    git(dir, "init", "-q");
    writeFileSync(path.join(dir, "a.txt"), "a\n");
    git(dir, "add", "a.txt");
    git(dir, "commit", "-q", "-m", "one");
    const thread = spawnThread();
    expect(thread).not.toBeNull();
    const env = { ...process.env, LC_ALL: "C" };
    for (const args of [["rev-parse", "HEAD"], ["status", "--porcelain=v2", "--branch"], ["rev-parse", "--verify", "no-such-ref"], ["no-such-command"]]) {
      const here = await execGitHere(args, { cwd: dir, env, timeoutMs: 30_000 });
      const there = await thread!.git(args, { cwd: dir, env, timeoutMs: 30_000 });
      expect(there).toEqual(here);
    }
    // Input reaches git's stdin through the thread too.
    const blob = await gitRun(["hash-object", "--stdin"], { cwd: dir, input: "hello\n" });
    expect(blob).toMatchObject({ ok: true, stdout: "ce013625030ba8dba906f756967f9e9ca394464a" });
  });

  it("starts a detached process with its stdio on this process's descriptors, and hears its exit", async () => {
    const dir = tempDir();
    const log = path.join(dir, "out.log");
    const fd = openSync(log, "a");
    let answer;
    try {
      // The child prints its pid and its process group (field 5 of /proc/self/stat), then waits
      // for the file that lets it end, so the exit is heard after the start, not with it.
      answer = await spawnThread()!.spawn({
        file: "/bin/sh",
        args: ["-c", 'read -r _ _ _ _ pgrp _ < /proc/$$/stat; echo "$$ $pgrp $DX_T"; while [ ! -e go ]; do sleep 0.05; done; exit 3'],
        cwd: dir,
        env: { PATH: process.env.PATH, DX_T: "from-env" },
        stdio: ["ignore", fd, fd],
      });
    } finally {
      closeSync(fd);
    }
    expect(answer.ok).toBe(true);
    if (!answer.ok) return;
    trackGroup(answer.pid);
    let exited = false;
    void answer.exited.then(() => (exited = true));
    await waitFor(() => readFileSync(log, "utf8").includes("from-env"), "the child's line");
    expect(readFileSync(log, "utf8").trim()).toBe(`${answer.pid} ${answer.pid} from-env`);
    expect(exited).toBe(false);
    writeFileSync(path.join(dir, "go"), "");
    await answer.exited;
    expect(pidAlive(answer.pid)).toBe(false);
  });

  it("a start that cannot happen is a failure the thread is sure of", async () => {
    const fd = openSync("/dev/null", "a");
    try {
      const a = await spawnThread()!.spawn({ file: "/bin/sh", args: ["-c", "exit 0"], cwd: "/no/such/dir", env: {}, stdio: ["ignore", fd, fd] });
      expect(a).toMatchObject({ ok: false, unknown: false });
    } finally {
      closeSync(fd);
    }
  });

  it("the built-in runner starts its wrapper from the thread: own group, exit code heard, the worktree looked at", async () => {
    const ws = makeWorkspace();
    const runner = createBuiltinRunner({
      log_dir: ws.logDir,
      providers: { busy: { command: [fixture("fake-sleep"), "0.2", "0", "touch"] } },
      workspace: { workspace_root: ws.root, allowed_prefixes: [], protected_paths: [] },
      max_log_mb: 50,
      env: fixtureEnv(),
      wave_id: "wave-test",
      stop_grace_ms: 2_000,
    });
    ws.worktree("bd-th1");
    const spec: JobSpec = {
      job_id: "bd-th1",
      item_id: "bd-th1",
      wave_id: "wave-test",
      phase: "implement",
      attempt: 1,
      provider: "busy",
      run_instance: "ri-th1",
      worktree: path.join(ws.root, "bd-th1", "repo"),
      prompt_file: ws.prompt("Implement bd-th1.\n"),
      contract_file: path.join(ws.logDir, "bd-th1.implement.contract.json"),
    };
    const exitCode = new Promise<number | null>((resolve) => {
      const off = runner.onExit((ref, code) => {
        if (ref.run_instance !== spec.run_instance) return;
        off();
        resolve(code);
      });
    });
    const started = await runner.start(spec);
    trackGroup(started.pgid);
    expect(started.pgid).toBe(started.pid);
    expect(await exitCode).toBe(0);
    // fake-sleep touched the worktree: the wrapper's look after the exit saw the change.
    expect(
      await runner.check({ job_id: spec.job_id, provider: "busy", run_instance: spec.run_instance }, { stall_minutes: 15, max_runtime_minutes: 120 }),
    ).toMatchObject({
      state: "exited_ok",
      exit_code: 0,
    });
    expect(readFileSync(path.join(ws.logDir, "busy", "bd-th1.log"), "utf8")).toContain("fake-sleep: exiting 0");
  });

  it("does not keep a process alive: a script that used it ends by itself", () => {
    const dir = tempDir();
    git(dir, "init", "-q");
    const script = path.join(dir, "use-thread.mjs");
    const dist = (f: string): string => JSON.stringify(pathToFileURL(path.join(REPO, "dist", f)).href);
    writeFileSync(
      script,
      [
        `const t = await import(${dist("runner/spawn-thread.js")});`,
        `const g = await import(${dist("workspace/git.js")});`,
        "t.startSpawnThread({ env: {} });",
        "if (!(await t.spawnThreadUp())) throw new Error('thread not up');",
        `const r = await g.git(["rev-parse", "--git-dir"], { cwd: ${JSON.stringify(dir)} });`,
        "console.log(r.ok ? 'git ok' : 'git failed');",
      ].join("\n"),
    );
    // execFileSync returns only once the process has ended: a thread holding it up would time out.
    const out = execFileSync(process.execPath, [script], { encoding: "utf8", timeout: 60_000 });
    expect(out.trim()).toBe("git ok");
    // Started and never used (a resume refused at once): the process ends all the same.
    const idle = path.join(dir, "start-only.mjs");
    writeFileSync(
      idle,
      [`const t = await import(${dist("runner/spawn-thread.js")});`, "t.startSpawnThread({ env: {} });", "console.log('ending');"].join("\n"),
    );
    expect(execFileSync(process.execPath, [idle], { encoding: "utf8", timeout: 60_000 }).trim()).toBe("ending");
  });
});
