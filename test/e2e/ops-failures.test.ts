import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { describe, expect } from "vitest";
import { it } from "../helpers/fixtures.js";
import { E2E, E2E_TIMEOUT_MS, git, parseObj } from "../helpers/world.js";

// Issue #13: what goes wrong around a wave is recorded in the words of the program that failed,
// and never costs the wave or an approval: a notify channel that fails, a `gh pr create` that
// fails, a worktree git refuses to make.

function patchConfig(w: E2E, patch: Record<string, unknown>): void {
  writeFileSync(w.configPath, JSON.stringify({ ...parseObj(readFileSync(w.configPath, "utf8")), ...patch }, null, 2));
}

describe("failures around a wave", { timeout: E2E_TIMEOUT_MS }, () => {
  it("a failing notify command and a webhook answering 400 are recorded; the wave still completes and exits 0", async () => {
    let posts = 0;
    const server = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        posts += 1;
        res.writeHead(400).end("bad hook");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const port = (server.address() as AddressInfo).port;
      const w = new E2E({ items: ["nf-1"] });
      patchConfig(w, {
        notify: { command: [process.execPath, "-e", "process.stderr.write('notifier down'); process.exit(3)"], webhook: `http://127.0.0.1:${port}/hook` },
      });
      const r = await w.expectExit("start", ["--items", "nf-1", "--wave-id", "w-nf"], 0);
      expect(r.stdout).toContain("wave w-nf completed");
      expect(r.stderr).toMatch(/notify command failed \(recorded; the wave is unaffected\): .*exit 3: notifier down/);
      expect(r.stderr).toMatch(
        /notify webhook failed \(recorded; the wave is unaffected\): POST http:\/\/127\.0\.0\.1:\d+ answered HTTP 400 Bad Request; a client error is not retried$/m,
      );
      // A 400 is not retried: it will not mend by itself.
      expect(posts).toBe(1);
      expect(w.state("w-nf")).toMatchObject({ status: "completed", reason_code: "wave_completed" });
      const notified = (await w.events("w-nf")).find((e) => e.event === "wave_notified");
      expect(notified).toMatchObject({
        state: "completed",
        results: [
          { channel: "command", ok: false, attempts: 1 },
          { channel: "webhook", ok: false, attempts: 1 },
        ],
      });
    } finally {
      server.close();
    }
  });

  it("gh: the PR URL goes to the item, the report and the tracker comment; a failing gh pr create is pr_open_failed with gh's words, the approval kept", async () => {
    const items = ["po-1", "po-2"];
    const w = new E2E({ items, tracker: { bd: {} } });
    // The remote's default branch is `trunk`, not the worktrees' base: the PR's base comes from it.
    const bare = path.join(w.root, "remote.git");
    execFileSync("git", ["init", "-q", "--bare", "-b", "trunk", bare]);
    git(w.repoDir, "remote", "add", "origin", bare);
    git(w.repoDir, "push", "-q", "origin", "main:trunk");
    const bin = path.join(w.root, "gh-bin");
    mkdirSync(bin);
    const calls = path.join(w.root, "gh-calls.jsonl");
    // A stand-in gh: records its argv; refuses for dx/po-2, opens a PR for anything else.
    writeFileSync(
      path.join(bin, "gh"),
      `#!${process.execPath}\nconst fs = require("fs");\nconst a = process.argv.slice(2);\nfs.appendFileSync(${JSON.stringify(calls)}, JSON.stringify(a) + "\\n");\n` +
        `if (a.includes("dx/po-2")) { process.stderr.write("GraphQL: Resource not accessible by integration (createPullRequest)\\n"); process.exit(1); }\n` +
        `console.log("https://github.example/acme/shop/pull/" + (a.includes("dx/po-1") ? "11" : "99"));\n`,
    );
    chmodSync(path.join(bin, "gh"), 0o755);
    patchConfig(w, { pr: { open: "gh", draft: false } });
    const run = await w.cli("start", ["--items", items.join(","), "--wave-id", "w-po"], { env: { PATH: `${bin}:${w.env.PATH ?? ""}` } }).exited;
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain("po-2: pr_open_failed: gh pr create failed: GraphQL: Resource not accessible by integration");

    const argv = readFileSync(calls, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as string[]);
    expect(argv).toHaveLength(2);
    for (const a of argv) {
      expect(a.slice(a.indexOf("--base"), a.indexOf("--base") + 2)).toEqual(["--base", "trunk"]);
      expect(a).not.toContain("--draft");
    }
    const [po1, po2] = w.state("w-po")?.items ?? [];
    expect(po1).toMatchObject({ status: "approved", delivery: { reason_code: "pr_opened", pushed: true, pr_url: "https://github.example/acme/shop/pull/11" } });
    expect(po2).toMatchObject({ status: "approved", reason_code: "approved", delivery: { reason_code: "pr_open_failed", pushed: true, pr_url: null } });
    expect(po2?.delivery?.error).toContain("GraphQL: Resource not accessible by integration (createPullRequest)");
    // Both branches reached the remote: the push came before the failed PR.
    for (const id of items) expect(git(bare, "rev-parse", `refs/heads/dx/${id}`).trim()).toMatch(/^[0-9a-f]{40}$/);

    // The URL in the ledger, the report and the tracker's comment.
    const delivered = (await w.events("w-po")).filter((e) => e.event === "item_delivered").map((e) => [e.item_id, e.reason_code]);
    expect(delivered.sort()).toEqual([
      ["po-1", "pr_opened"],
      ["po-2", "pr_open_failed"],
    ]);
    const md = (await w.expectExit("report", ["--wave-id", "w-po"], 0)).stdout;
    expect(md).toContain("https://github.example/acme/shop/pull/11");
    const bd = parseObj(readFileSync(w.bdState, "utf8"));
    const comments = bd.comments as Record<string, string[]>;
    expect(comments["po-1"]?.some((c) => c.includes("pull request https://github.example/acme/shop/pull/11"))).toBe(true);
    expect((comments["po-2"] ?? []).some((c) => c.includes("pull request"))).toBe(false);
  });

  it("a worktree git refuses to make: the item fails with git's message whole, on indented lines", async () => {
    const w = new E2E({ items: ["wt-1"] });
    // dx/wt-1 is checked out in a worktree of its own elsewhere: git will not check it out twice.
    git(w.repoDir, "branch", "dx/wt-1");
    git(w.repoDir, "worktree", "add", "-q", path.join(w.root, "elsewhere"), "dx/wt-1");
    const r = await w.expectExit("start", ["--items", "wt-1", "--wave-id", "w-wt"], 4);
    const item = w.state("w-wt")?.items[0];
    expect(item).toMatchObject({ status: "failed" });
    expect(item?.reason_code).toMatch(/^worktree_create_failed:/);
    // Every line of git's message, not only the first ("Preparing worktree …").
    const lines = (item?.error ?? "").split("\n");
    expect(lines.length).toBeGreaterThan(1);
    expect(item?.error).toMatch(/fatal: 'dx\/wt-1' is already (checked out|used by worktree) at/);
    // The transition line, then git's words under it, each line indented.
    expect(r.stdout).toMatch(
      /Z wt-1 -> failed \(worktree_create_failed:.*\)\n {4}git worktree add for wt-1 failed: Preparing worktree.*\n {4}fatal: 'dx\/wt-1' is already (checked out|used by worktree) at/,
    );
  });

  it("prune is quiet about a dead wave's stale pid file, and names one of a wave whose controller still runs", async () => {
    const a = new E2E({ items: ["pa-1"], scenario: { items: { "pa-1": { implement: { gate: "pa" } } } }, config: { require_review: false } });
    const live = a.cli("start", ["--items", "pa-1", "--wave-id", "w-live"]);
    await a.waitEvent("w-live", (e) => e.event === "job_started", "w-live job_started");
    // Two stale pid files beside the running job's: one of w-live, one of a wave long gone. Their
    // metas are the running job's, renamed; their pid is a process that has exited.
    const dir = path.join(a.runnerLogDir, "agent-a");
    const metaFile = readdirSync(dir).find((f) => f.endsWith(".meta.json"));
    if (metaFile === undefined) throw new Error(`no meta in ${dir}`);
    const meta = parseObj(readFileSync(path.join(dir, metaFile), "utf8"));
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid;
    for (const [job, wave] of [
      ["zz-live-job", "w-live"],
      ["zz-gone-job", "w-gone"],
    ] as const) {
      writeFileSync(path.join(dir, `${job}.meta.json`), JSON.stringify({ ...meta, job_id: job, wave_id: wave }));
      writeFileSync(path.join(dir, `${job}.pid`), `${dead}\n`);
    }

    const b = new E2E({ items: ["pb-1"], shareStoreWith: a, config: { require_review: false } });
    const r = await b.expectExit("start", ["--items", "pb-1", "--wave-id", "w-other"], 0);
    const notes = r.stderr.split("\n").filter((l) => l.includes("runner prune"));
    expect(notes).toEqual([
      "warning: runner prune: removed the pid file of agent-a job zz-live-job of live wave w-live: its process is gone (dx-batch status --wave-id w-live)",
    ]);
    for (const job of ["zz-live-job", "zz-gone-job"]) expect(existsSync(path.join(dir, `${job}.pid`))).toBe(false);

    a.openGate("pa");
    expect((await live.exited).code).toBe(0);
  });

  it("a tracker failing: bd's own words, whole, on indented lines, in the output and the ledger; the wave still runs", async () => {
    const w = new E2E({ items: ["tk-1"], tracker: { bd: {} }, env: { FAKE_BD_FAIL_CMDS: "show,update,comments,close" }, config: { require_review: false } });
    const r = await w.expectExit("start", ["--items", "tk-1", "--wave-id", "w-tk"], 0);
    // The lookup at start: a warning, then bd's message line by line under it.
    expect(r.stderr).toMatch(
      /^warning: tk-1: tracker lookup failed \(tracker_command_failed\); continuing with the id alone\n {4}\S*bd show tk-1 --json: exited 1: Error: failed to open database\n {6}caused by: SQLITE_IOERR: disk I\/O error/m,
    );
    // A write during the wave: recorded with bd's words (not just "in_progress failed"), printed under the line.
    const errors = (await w.events("w-tk")).filter((e) => e.event === "tracker_error");
    expect(errors.map((e) => e.op).sort()).toEqual(["comment", "in_progress"]);
    for (const e of errors) expect(e.detail).toMatch(/exited 1: Error: failed to open database\n {2}caused by: SQLITE_IOERR/);
    expect(r.stdout).toMatch(
      /Z tk-1: tracker in_progress failed \(tracker_command_failed\)\n {4}\S*bd update tk-1 .*exited 1: Error: failed to open database\n {6}caused by: SQLITE_IOERR/,
    );
    expect(w.state("w-tk")?.items[0]).toMatchObject({ status: "approved" });
  });
});
