import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BD_MIN_VERSION, createBeadsTracker, type BeadsTrackerOptions } from "../../src/tracker/beads.js";
import { isDxError } from "../../src/errors.js";
import { defaultBdLockFile } from "../../src/tracker/bd-exec.js";

const FAKE_BD = fileURLToPath(new URL("../fixtures/bd/bd", import.meta.url));

const ISSUES = [
  {
    id: "bd-a1",
    title: "Add the parser",
    description: "Parse things.",
    acceptance_criteria: "Tests pass.",
    status: "open",
    priority: 1,
    issue_type: "task",
    labels: ["backend"],
    created_at: "2025-01-01T00:00:00Z",
    updated_at: "2025-01-01T00:00:00Z",
  },
  {
    id: "bd-b2",
    title: "Use the parser",
    description: "",
    status: "open",
    priority: 2,
    issue_type: "task",
    dependencies: [
      { id: "bd-a1", dependency_type: "blocks" },
      { id: "bd-p0", dependency_type: "parent-child" },
    ],
  },
  { id: "bd-c3", title: "Done already", status: "closed", priority: 2, issue_type: "task", close_reason: "done" },
  {
    id: "bd-d4",
    title: "Front",
    status: "open",
    priority: 2,
    issue_type: "task",
    labels: ["frontend"],
    dependencies: [{ id: "bd-c3", dependency_type: "blocks" }],
  },
  { id: "bd-p0", title: "Epic", status: "open", priority: 0, issue_type: "epic" },
];

let dir: string;
let statePath: string;
let logPath: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "dx-beads-"));
  statePath = path.join(dir, "state.json");
  logPath = path.join(dir, "calls.log");
  await writeFile(statePath, JSON.stringify({ issues: ISSUES }));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function tracker(extraEnv: Record<string, string> = {}, opts: Partial<BeadsTrackerOptions> = {}) {
  return createBeadsTracker({
    command: FAKE_BD,
    cwd: dir,
    env: { ...process.env, FAKE_BD_STATE: statePath, FAKE_BD_LOG: logPath, ...extraEnv },
    lockFile: path.join(dir, "bd.lock"),
    retry: { attempts: 4, baseMs: 10 },
    ...opts,
  });
}

async function calls(): Promise<string[][]> {
  if (!existsSync(logPath)) return [];
  const text = await readFile(logPath, "utf8");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l).argv);
}

async function state(): Promise<{ issues: { id: string; status: string; close_reason?: string }[]; comments?: Record<string, string[]> }> {
  return JSON.parse(await readFile(statePath, "utf8"));
}

describe("beads tracker: show", () => {
  it("parses bd's bare array form and keeps only blocks dependencies", async () => {
    const r = await tracker().show("bd-b2");
    expect(r).toEqual({
      found: true,
      issue: {
        id: "bd-b2",
        title: "Use the parser",
        description: "",
        acceptance_criteria: "",
        status: "open",
        labels: [],
        blocked_by: ["bd-a1"],
      },
    });
    expect(await calls()).toEqual([["show", "bd-b2", "--json"]]);
  });

  it("parses the enveloped {schema_version, data} form", async () => {
    const r = await tracker({ FAKE_BD_MODE: "envelope" }).show("bd-a1");
    expect(r.found).toBe(true);
    if (r.found) {
      expect(r.issue.title).toBe("Add the parser");
      expect(r.issue.acceptance_criteria).toBe("Tests pass.");
      expect(r.issue.labels).toEqual(["backend"]);
    }
  });

  it("reports an unknown id as item_not_found, from the {error} form on stdout or stderr", async () => {
    const a = await tracker().show("bd-zz9");
    expect(a).toMatchObject({ found: false, reason_code: "item_not_found" });
    const b = await tracker({ FAKE_BD_MODE: "stderr-json" }).show("bd-zz9");
    expect(b).toMatchObject({ found: false, reason_code: "item_not_found" });
    const c = await tracker({ FAKE_BD_MODE: "empty" }).show("bd-a1");
    expect(c).toMatchObject({ found: false, reason_code: "item_not_found" });
  });

  it("gives reason codes, not exceptions, for garbage, errors, failures and a missing bd", async () => {
    expect(await tracker({ FAKE_BD_MODE: "garbage" }).show("bd-a1")).toMatchObject({ found: false, reason_code: "tracker_output_invalid" });
    expect(await tracker({ FAKE_BD_MODE: "error" }).show("bd-a1")).toMatchObject({ found: false, reason_code: "tracker_command_failed" });
    expect(await tracker({ FAKE_BD_MODE: "exit1" }).show("bd-a1")).toMatchObject({ found: false, reason_code: "tracker_command_failed" });
    const missing = await tracker({}, { command: path.join(dir, "no-such-bd") }).show("bd-a1");
    expect(missing).toMatchObject({ found: false, reason_code: "tracker_command_missing" });
  });

  it("refuses output whose shape is wrong, naming the bad path", async () => {
    await writeFile(statePath, JSON.stringify({ issues: [{ id: "bd-a1", title: "x", labels: "not-a-list" }] }));
    const r = await tracker().show("bd-a1");
    expect(r).toMatchObject({ found: false, reason_code: "tracker_output_invalid" });
    if (!r.found) expect(r.detail).toContain("/labels");
  });

  it("never passes an invalid id to bd", async () => {
    const r = await tracker().show("--help");
    expect(r).toMatchObject({ found: false, reason_code: "invalid_item_id" });
    expect(await calls()).toEqual([]);
  });
});

describe("beads tracker: ready", () => {
  it("lists open unblocked issues, always passing a limit", async () => {
    const r = await tracker().ready({});
    expect(r.map((i) => i.id)).toEqual(["bd-a1", "bd-d4", "bd-p0"]);
    // bd ready's list form carries {depends_on_id, type} dependencies.
    expect(r.find((i) => i.id === "bd-d4")?.blocked_by).toEqual(["bd-c3"]);
    expect(await calls()).toEqual([["ready", "--json", "-n", "10000"]]);
  });

  it("passes limit and label", async () => {
    const r = await tracker({ FAKE_BD_MODE: "envelope" }).ready({ limit: 1, label: "frontend" });
    expect(r.map((i) => i.id)).toEqual(["bd-d4"]);
    expect(await calls()).toEqual([["ready", "--json", "-n", "1", "-l", "frontend"]]);
  });

  it("throws a DxError with the reason code when bd fails", async () => {
    const err = await tracker({ FAKE_BD_MODE: "garbage" })
      .ready({})
      .catch((e: unknown) => e);
    expect(isDxError(err) && err.code).toBe("tracker_output_invalid");
    const err2 = await tracker({ FAKE_BD_MODE: "exit1" })
      .ready({})
      .catch((e: unknown) => e);
    expect(isDxError(err2) && err2.code).toBe("tracker_command_failed");
  });
});

describe("beads tracker: writes", () => {
  it("marks in progress, comments and closes with the real bd argv", async () => {
    const t = tracker({}, { close_on_approve: true });
    expect(await t.markInProgress("bd-a1")).toEqual({ ok: true, reason_code: null });
    expect(await t.comment("bd-a1", "dx-batch: approved (attempt 1, opencode)")).toEqual({ ok: true, reason_code: null });
    expect(await t.comment("bd-a1", "-leading dash")).toEqual({ ok: true, reason_code: null });
    expect(await t.close("bd-a1", "approved by dx-batch")).toEqual({ ok: true, reason_code: null });
    expect(await calls()).toEqual([
      ["update", "bd-a1", "--status", "in_progress", "--json"],
      ["comments", "add", "bd-a1", "dx-batch: approved (attempt 1, opencode)"],
      ["comments", "add", "bd-a1", "--", "-leading dash"],
      ["close", "bd-a1", "-r", "approved by dx-batch", "--json"],
    ]);
    const s = await state();
    expect(s.issues.find((i) => i.id === "bd-a1")).toMatchObject({ status: "closed", close_reason: "approved by dx-batch" });
    expect(s.comments?.["bd-a1"]).toEqual(["dx-batch: approved (attempt 1, opencode)", "-leading dash"]);
  });

  it("does not close unless close_on_approve", async () => {
    expect(await tracker().close("bd-a1", "approved")).toEqual({ ok: true, reason_code: "tracker_close_disabled" });
    expect(await calls()).toEqual([]);
  });

  it("reports failures instead of throwing", async () => {
    const bad = tracker({ FAKE_BD_MODE: "exit1" }, { close_on_approve: true });
    // Each failure carries bd's own words (issue #13: printed whole under the event's line).
    const failed = { ok: false, reason_code: "tracker_command_failed", detail: expect.stringContaining("exited 1: Error: something went wrong") };
    expect(await bad.markInProgress("bd-a1")).toEqual(failed);
    expect(await bad.comment("bd-a1", "x")).toEqual(failed);
    expect(await bad.close("bd-a1", "x")).toEqual(failed);
    expect(await tracker({ FAKE_BD_MODE: "garbage" }).markInProgress("bd-a1")).toMatchObject({ ok: false, reason_code: "tracker_output_invalid" });
    expect(await tracker().markInProgress("bd-zz9")).toMatchObject({ ok: false, reason_code: "item_not_found" });
    expect(await tracker({}, { command: path.join(dir, "nope") }).comment("bd-a1", "x")).toMatchObject({
      ok: false,
      reason_code: "tracker_command_missing",
    });
    expect(await tracker().comment("not an id", "x")).toEqual({ ok: false, reason_code: "invalid_item_id" });
  });
});

describe("beads tracker: locking", () => {
  it("retries bd's lock errors with backoff", async () => {
    const t = tracker({ FAKE_BD_LOCKED_TIMES: "2", FAKE_BD_COUNTER: path.join(dir, "count") });
    const r = await t.show("bd-a1");
    expect(r.found).toBe(true);
    expect(await calls()).toEqual([
      ["show", "bd-a1", "--json"],
      ["show", "bd-a1", "--json"],
      ["show", "bd-a1", "--json"],
    ]);
  });

  it("gives up after the configured attempts with tracker_locked", async () => {
    const t = tracker({ FAKE_BD_LOCKED_TIMES: "100", FAKE_BD_COUNTER: path.join(dir, "count") }, { retry: { attempts: 3, baseMs: 5 } });
    expect(await t.markInProgress("bd-a1")).toMatchObject({ ok: false, reason_code: "tracker_locked" });
    expect((await calls()).length).toBe(3);
  });

  it("the overlap detector of the fake bd sees unserialized calls (control)", async () => {
    const marker = path.join(dir, "marker");
    const env = { ...process.env, FAKE_BD_STATE: statePath, FAKE_BD_MARKER: marker, FAKE_BD_SLEEP_MS: "1000" };
    await Promise.all([execa(FAKE_BD, ["show", "bd-a1", "--json"], { env }), execa(FAKE_BD, ["show", "bd-a1", "--json"], { env })]);
    expect(existsSync(`${marker}.overlap`)).toBe(true);
  });

  it("never runs two bd calls at once, even from two tracker instances", async () => {
    const marker = path.join(dir, "marker");
    const extra = { FAKE_BD_MARKER: marker, FAKE_BD_SLEEP_MS: "300" };
    const t1 = tracker(extra);
    const t2 = tracker(extra);
    const results = await Promise.all([t1.comment("bd-a1", "one"), t1.comment("bd-a1", "two"), t2.comment("bd-a1", "three"), t2.markInProgress("bd-b2")]);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(existsSync(`${marker}.overlap`)).toBe(false);
    expect((await state()).comments?.["bd-a1"]?.sort()).toEqual(["one", "three", "two"]);
  });
});

describe("beads tracker: version", () => {
  it("accepts bd at or above the minimum", async () => {
    expect(BD_MIN_VERSION).toBe("0.20.0");
    expect(await tracker().versionCheck()).toMatchObject({ ok: true, reason_code: null });
    expect(await tracker({ FAKE_BD_VERSION: "0.20.0" }).versionCheck()).toMatchObject({ ok: true });
    expect(await calls()).toEqual([["--version"], ["--version"]]);
  });

  it("refuses an old, unreadable or missing bd", async () => {
    expect(await tracker({ FAKE_BD_VERSION: "0.19.9" }).versionCheck()).toMatchObject({ ok: false, reason_code: "tracker_version_too_old" });
    expect(await tracker({ FAKE_BD_VERSION: "dev" }).versionCheck()).toMatchObject({ ok: false, reason_code: "tracker_version_unknown" });
    expect(await tracker({}, { command: path.join(dir, "nope") }).versionCheck()).toMatchObject({
      ok: false,
      reason_code: "tracker_command_missing",
    });
  });
});

describe("defaultBdLockFile", () => {
  it("is one lock per bd database: the nearest .beads upwards, or $BEADS_DIR", async () => {
    await mkdir(path.join(dir, "repo", ".beads"), { recursive: true });
    await mkdir(path.join(dir, "repo", "src", "deep"), { recursive: true });
    await mkdir(path.join(dir, "other"), { recursive: true });
    const top = defaultBdLockFile(path.join(dir, "repo"), {});
    expect(defaultBdLockFile(path.join(dir, "repo", "src", "deep"), {})).toBe(top);
    expect(defaultBdLockFile(path.join(dir, "other"), {})).not.toBe(top);
    expect(defaultBdLockFile(path.join(dir, "other"), { BEADS_DIR: path.join(dir, "repo", ".beads") })).toBe(top);
    expect(path.basename(top)).toMatch(/^bd-[0-9a-f]{16}\.lock$/);
  });
});
