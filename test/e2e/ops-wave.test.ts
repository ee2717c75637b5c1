import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { describe, expect } from "vitest";
import { it } from "../helpers/fixtures.js";
import { waitFor } from "../helpers/wait.js";
import { E2E, E2E_TIMEOUT_MS, git, isObj, parseObj, type JsonObject } from "../helpers/world.js";

// Issue #13 end to end: the newest wave by default, next_command, terminal events, an operator's
// double Ctrl-C, notifications, and approved work pushed (and a pull request opened).

const lines = (text: string): JsonObject[] =>
  text
    .split("\n")
    .filter((l) => l.trim().length > 0)
    .map((l) => parseObj(l));

/** A `dx-batch` on PATH that runs this build, so a printed next_command runs as printed. */
function dxShim(w: E2E): string {
  const dir = path.join(w.root, "shim");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "dx-batch");
  writeFileSync(file, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(w.bin)} "$@"\n`);
  chmodSync(file, 0o755);
  return dir;
}

describe("operating waves", { timeout: E2E_TIMEOUT_MS }, () => {
  it("latest wave by default for status, check, report, resume and cancel; next_command runs as printed; terminal events in the timeline", async () => {
    const w = new E2E({
      items: ["lw-1", "lw-2", "lw-3"],
      scenario: { items: { "lw-1": { implement: { gate: "a" } }, "lw-2": { implement: { gate: "b" } }, "lw-3": { implement: { gate: "c" } } } },
    });

    // Wave A: paused by a signal, then continued by running its next_command exactly as printed.
    const a = w.cli("start", ["--items", "lw-1", "--wave-id", "w-a"]);
    await w.waitEvent("w-a", (e) => e.event === "job_started", "w-a job_started");
    a.kill("SIGINT");
    expect((await a.exited).code).toBe(2);
    const st = await w.expectExit("status", [], 0);
    expect(st.stderr).toContain("using the newest wave: w-a");
    expect(st.stdout).toContain(`next: dx-batch resume --wave-id w-a --config ${w.configPath}`);
    const ck = await w.run("check", ["--json"]);
    expect(ck.code).toBe(2);
    const doc = parseObj(ck.stdout);
    expect(doc).toMatchObject({
      wave_id: "w-a",
      state: "paused",
      next_action: "run_dx_batch_resume",
      next_command: `dx-batch resume --wave-id w-a --config ${w.configPath}`,
    });
    w.openGate("a");
    const next = typeof doc.next_command === "string" ? doc.next_command : "";
    const ran = execFileSync("sh", ["-c", `${next} >/dev/null 2>&1; echo "exit=$?"`], {
      cwd: w.root,
      env: { ...w.env, PATH: `${dxShim(w)}:${w.env.PATH ?? ""}` },
      encoding: "utf8",
    });
    expect(ran.trim()).toBe("exit=0");
    expect(w.state("w-a")?.status).toBe("completed");

    // Report of the newest wave: the timeline ends with the terminal event; per item branch, head, worktree, logs.
    const rep = await w.expectExit("report", ["--format", "json"], 0);
    expect(rep.stderr).toContain("using the newest wave: w-a");
    const r = parseObj(rep.stdout);
    const timeline = (r.timeline as JsonObject[]).map((t) => t.event);
    expect(timeline.at(-1)).toBe("wave_completed");
    expect(timeline).toContain("wave_resumed");
    const item = (r.items as JsonObject[])[0];
    const head = git(path.join(w.workspaceRoot, "lw-1", "repo"), "rev-parse", "HEAD").trim();
    expect(item).toMatchObject({ beads_id: "lw-1", worktree: path.join(w.workspaceRoot, "lw-1", "repo"), branch: "dx/lw-1", head_commit: head });
    const attempts = item?.attempts as JsonObject[];
    expect(attempts.map((x) => typeof x.log_path)).toEqual(["string", "string"]);
    const md = await w.expectExit("report", [], 0);
    expect(md.stdout).toContain("- branch: `dx/lw-1` at `" + head + "`");
    expect(md.stdout).toMatch(/- log: `.*\/waves\/w-a\/logs\/[0-9a-f-]{36}\.log`/);
    expect(md.stdout).toMatch(/#\d+ wave_completed \(wave_completed\)/);

    // Wave B: a detached start (its controller starts, not resumes, the wave); cancel the newest.
    const b = await w.expectExit("start", ["--items", "lw-2", "--wave-id", "w-b", "--detach"], 0);
    expect(b.stdout).toContain("w-b");
    await w.waitEvent("w-b", (e) => e.event === "job_started", "w-b job_started");
    const cancel = await w.expectExit("cancel", [], 0);
    expect(cancel.stderr).toContain("using the newest wave: w-b");
    const bEvents = (await w.events("w-b")).map((e) => e.event);
    expect(bEvents).toContain("wave_started");
    expect(bEvents).not.toContain("wave_resumed");
    expect(bEvents.filter((e) => !["job_finished", "tracker_error"].includes(e)).at(-1)).toBe("wave_cancelled");

    // Wave C: paused, then `resume` without --wave-id continues the newest.
    const c = w.cli("start", ["--items", "lw-3", "--wave-id", "w-c"]);
    await w.waitEvent("w-c", (e) => e.event === "job_started", "w-c job_started");
    c.kill("SIGINT");
    expect((await c.exited).code).toBe(2);
    w.openGate("c");
    const res = await w.expectExit("resume", [], 0);
    expect(res.stderr).toContain("using the newest wave: w-c");
    expect(w.state("w-c")?.status).toBe("completed");
  });

  it("start --json begins with wave_created and ends with wave_completed before the summary", async () => {
    const w = new E2E({ items: ["js-1"] });
    const r = await w.expectExit("start", ["--items", "js-1", "--wave-id", "w-json", "--json"], 0);
    const evs = lines(r.stdout);
    expect(evs[0]).toMatchObject({ event: "wave_created", seq: 1, wave_id: "w-json" });
    expect(evs.at(-2)).toMatchObject({ event: "wave_completed", approved: 1, not_approved: 0 });
    expect(evs.at(-1)).toMatchObject({ summary: true, status: "completed" });
  });

  it("an operator's double Ctrl-C stops the agents, says so, and costs no attempt", async () => {
    // max_attempts 1: if the stop counted, the resumed item would end max_attempts_exceeded.
    const w = new E2E({ items: ["dc-1"], scenario: { items: { "dc-1": { implement: [{ gate: "dc" }, {}] } } }, config: { max_attempts: 1 } });
    const p = w.cli("start", ["--items", "dc-1", "--wave-id", "w-dc"], { env: { DX_BATCH_PAUSE_GRACE_MS: "20000" } });
    await w.waitEvent("w-dc", (e) => e.event === "job_started", "job_started");
    const agent = await waitFor(() => w.starts((s) => s.item === "dc-1")[0], "the agent's start record");
    p.kill("SIGINT");
    await waitFor(() => p.stderr().includes("Press Ctrl-C again"), "the pause prompt");
    p.kill("SIGINT");
    const end = await p.exited;
    expect(end.code).toBe(2);
    expect(end.stderr).toMatch(/agents stopped: 1 job\(s\) ended/);
    expect(() => process.kill(agent.pid, 0)).toThrow();
    const s = w.state("w-dc");
    expect(s?.items[0]).toMatchObject({ status: "pending", reason_code: "stopped_by_operator", charged_attempts: 0 });
    expect(s?.items[0]?.history[0]).toMatchObject({ charged: false, reason_code: "stopped_by_operator" });

    await w.expectExit("resume", ["--wave-id", "w-dc"], 0);
    const after = w.state("w-dc")?.items[0];
    expect(after?.status).toBe("approved");
    expect(after?.history.filter((h) => h.phase === "implement").map((h) => [h.provider, h.charged])).toEqual([
      ["agent-a", false],
      ["agent-a", true],
    ]);
  });

  it("notify: the command and a local webhook (retried after a 500) receive the terminal state", async () => {
    const got: { body: JsonObject; headers: http.IncomingHttpHeaders }[] = [];
    let calls = 0;
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        calls += 1;
        if (calls === 1) {
          res.writeHead(500).end("try again");
          return;
        }
        got.push({ body: parseObj(body), headers: req.headers });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const port = (server.address() as AddressInfo).port;
      const w = new E2E({ items: ["nt-1"] });
      const record = path.join(w.root, "notified.json");
      const script = path.join(w.root, "notify.mjs");
      writeFileSync(
        script,
        `import fs from "node:fs";\nconst e = process.env;\nfs.writeFileSync(${JSON.stringify(record)}, JSON.stringify({ id: e.DX_BATCH_WAVE_ID, state: e.DX_BATCH_WAVE_STATE, report: JSON.parse(fs.readFileSync(e.DX_BATCH_REPORT_JSON, "utf8")) }));\n`,
      );
      const cfg = parseObj(readFileSync(w.configPath, "utf8"));
      writeFileSync(w.configPath, JSON.stringify({ ...cfg, notify: { command: [process.execPath, script], webhook: `http://127.0.0.1:${port}/hook/SECRET` } }));
      await w.expectExit("start", ["--items", "nt-1", "--wave-id", "w-nt"], 0);

      const rec = parseObj(readFileSync(record, "utf8"));
      expect(rec).toMatchObject({ id: "w-nt", state: "completed" });
      expect(isObj(rec.report) && rec.report.wave_id).toBe("w-nt");
      expect(got).toHaveLength(1);
      expect(got[0]?.body).toMatchObject({ wave_id: "w-nt", status: "completed" });
      expect(got[0]?.headers["x-dx-batch-wave-state"]).toBe("completed");
      const notified = (await w.events("w-nt")).find((e) => e.event === "wave_notified");
      expect(notified).toMatchObject({
        state: "completed",
        results: [
          { channel: "command", ok: true },
          { channel: "webhook", ok: true, attempts: 2 },
        ],
      });
      // The webhook's secret path is not in the ledger.
      expect(readFileSync(w.layout.waveLedger("w-nt"), "utf8")).not.toContain("SECRET");
    } finally {
      server.close();
    }
  });

  it("approved branches are pushed to a bare remote and a stand-in gh opens the PR (URL recorded); a push failure keeps the approval", async () => {
    const w = new E2E({ items: ["pr-1"] });
    const bare = path.join(w.root, "remote.git");
    execFileSync("git", ["init", "-q", "--bare", "-b", "main", bare]);
    git(w.repoDir, "remote", "add", "origin", bare);
    git(w.repoDir, "push", "-q", "origin", "main");
    const bin = path.join(w.root, "gh-bin");
    mkdirSync(bin);
    const argvLog = path.join(w.root, "gh-argv.json");
    writeFileSync(
      path.join(bin, "gh"),
      `#!/bin/sh\n${JSON.stringify(process.execPath)} -e 'require("fs").writeFileSync(process.argv[1], JSON.stringify(process.argv.slice(2)))' ${JSON.stringify(argvLog)} "$@"\necho "https://github.example/acme/shop/pull/7"\n`,
    );
    chmodSync(path.join(bin, "gh"), 0o755);
    const cfg = parseObj(readFileSync(w.configPath, "utf8"));
    writeFileSync(w.configPath, JSON.stringify({ ...cfg, pr: { open: "gh" } }));
    const env = { PATH: `${bin}:${w.env.PATH ?? ""}` };
    const run = await w.cli("start", ["--items", "pr-1", "--wave-id", "w-pr2"], { env }).exited;
    expect(run.code, run.stderr).toBe(0);

    const wt = path.join(w.workspaceRoot, "pr-1", "repo");
    const head = git(wt, "rev-parse", "HEAD").trim();
    expect(git(bare, "rev-parse", "refs/heads/dx/pr-1").trim()).toBe(head);
    const argv = JSON.parse(readFileSync(argvLog, "utf8")) as string[];
    expect(argv.slice(0, 6)).toEqual(["pr", "create", "--head", "dx/pr-1", "--title", "pr-1: Title of pr-1"]);
    expect(argv).toContain("--draft");
    expect(argv.slice(argv.indexOf("--base"), argv.indexOf("--base") + 2)).toEqual(["--base", "main"]);
    const body = argv[argv.indexOf("--body") + 1] ?? "";
    expect(body).toContain("SUMMARY-pr-1-attempt1-agent-a");
    expect(body).toContain("Verdict: **APPROVED**");
    const item = w.state("w-pr2")?.items[0];
    expect(item).toMatchObject({
      status: "approved",
      delivery: { reason_code: "pr_opened", pushed: true, pr_url: "https://github.example/acme/shop/pull/7", head },
    });
    const rep = parseObj((await w.expectExit("report", ["--wave-id", "w-pr2", "--format", "json"], 0)).stdout);
    expect((rep.items as JsonObject[])[0]?.delivery).toMatchObject({ pr_url: "https://github.example/acme/shop/pull/7" });

    // A remote that does not exist: the push fails, git's words are recorded, the item stays approved.
    const w2 = new E2E({ items: ["pf-1"] });
    const cfg2 = parseObj(readFileSync(w2.configPath, "utf8"));
    writeFileSync(w2.configPath, JSON.stringify({ ...cfg2, pr: { remote: "nowhere" } }));
    const r2 = await w2.expectExit("start", ["--items", "pf-1", "--wave-id", "w-pf"], 0);
    expect(r2.stderr).toContain("pf-1: pr_push_failed: git push nowhere dx/pf-1 failed: fatal: 'nowhere' does not appear to be a git repository");
    const it2 = w2.state("w-pf")?.items[0];
    expect(it2).toMatchObject({ status: "approved", reason_code: "approved", delivery: { reason_code: "pr_push_failed", pushed: false } });
    expect(it2?.delivery?.error).toContain("fatal: 'nowhere' does not appear to be a git repository");
  });
});
