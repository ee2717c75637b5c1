import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createFileTracker } from "../../src/tracker/file.js";
import { createNoneTracker } from "../../src/tracker/none.js";
import { createTracker } from "../../src/tracker/create.js";
import { isDxError } from "../../src/errors.js";

let dir: string;
let file: string;

const lines = [
  { id: "fx-1", title: "Base", description: "d1", acceptance_criteria: "a1", status: "open", labels: ["core"] },
  // bd show shape
  { id: "fx-2", title: "Needs 1", status: "open", labels: ["core"], dependencies: [{ id: "fx-1", dependency_type: "blocks" }] },
  // bd export shape, on a closed issue: ready
  { id: "fx-3", title: "Needs closed", status: "open", labels: ["ui"], dependencies: [{ issue_id: "fx-3", depends_on_id: "fx-9", type: "blocks" }] },
  { id: "fx-4", title: "Child", status: "open", dependencies: [{ depends_on_id: "fx-1", type: "parent-child" }] },
  { id: "fx-5", title: "In progress", status: "in_progress" },
  { id: "fx-6", title: "Unknown dep", status: "open", dependencies: [{ depends_on_id: "ext-1", type: "blocks" }] },
  { id: "fx-7", title: "Dep closed per bd", status: "open", dependencies: [{ id: "ext-2", status: "closed", dependency_type: "blocks" }] },
  { id: "fx-9", title: "Closed", status: "closed" },
];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "dx-filetracker-"));
  file = path.join(dir, "issues.jsonl");
  await writeFile(file, lines.map((l) => JSON.stringify(l)).join("\n") + "\n\n");
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function dxCode(p: Promise<unknown>): Promise<string | null> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  return isDxError(e) ? e.code : null;
}

describe("file tracker", () => {
  it("shows an issue with its blocks dependencies, in either dependency shape", async () => {
    const t = createFileTracker(file);
    expect(t.type).toBe("file");
    expect(await t.show("fx-1")).toEqual({
      found: true,
      issue: { id: "fx-1", title: "Base", description: "d1", acceptance_criteria: "a1", status: "open", labels: ["core"], blocked_by: [] },
    });
    const two = await t.show("fx-2");
    expect(two.found && two.issue.blocked_by).toEqual(["fx-1"]);
    const three = await t.show("fx-3");
    expect(three.found && three.issue.blocked_by).toEqual(["fx-9"]);
    const four = await t.show("fx-4");
    expect(four.found && four.issue.blocked_by).toEqual([]);
    expect(await t.show("fx-404")).toMatchObject({ found: false, reason_code: "item_not_found" });
  });

  it("lists ready issues: open, every blocks dependency closed", async () => {
    const t = createFileTracker(file);
    expect((await t.ready({})).map((i) => i.id)).toEqual(["fx-1", "fx-3", "fx-4", "fx-7"]);
  });

  it("honours label and limit", async () => {
    const t = createFileTracker(file);
    expect((await t.ready({ label: "core" })).map((i) => i.id)).toEqual(["fx-1"]);
    expect((await t.ready({ label: "ui" })).map((i) => i.id)).toEqual(["fx-3"]);
    expect((await t.ready({ limit: 2 })).map((i) => i.id)).toEqual(["fx-1", "fx-3"]);
    expect(await dxCode(t.ready({ limit: 0 }))).toBe("invalid_limit");
  });

  it("sees a dependency become closed when the file changes", async () => {
    const t = createFileTracker(file);
    const edited = lines.map((l) => (l.id === "fx-1" ? { ...l, status: "closed" } : l));
    await writeFile(file, edited.map((l) => JSON.stringify(l)).join("\n"));
    expect((await t.ready({})).map((i) => i.id)).toEqual(["fx-2", "fx-3", "fx-4", "fx-7"]);
  });

  it("is read-only: writes are no-ops that answer ok", async () => {
    const t = createFileTracker(file);
    expect(await t.markInProgress("fx-1")).toEqual({ ok: true, reason_code: null });
    expect(await t.comment("fx-1", "hello")).toEqual({ ok: true, reason_code: null });
    expect(await t.close("fx-1", "done")).toEqual({ ok: true, reason_code: null });
    expect((await t.ready({})).map((i) => i.id)).toContain("fx-1");
    expect(await t.versionCheck()).toMatchObject({ ok: true });
  });

  it("names file and line of a malformed line", async () => {
    await writeFile(file, `${JSON.stringify(lines[0])}\n{"id": "fx-2", "title": \n`);
    const err = await createFileTracker(file)
      .show("fx-1")
      .catch((e: unknown) => e);
    expect(isDxError(err) && err.code).toBe("tracker_file_invalid");
    expect(isDxError(err) && err.message).toContain(`${file}:2`);
  });

  it("refuses a line of the wrong shape and duplicate ids", async () => {
    await writeFile(file, `${JSON.stringify(lines[0])}\n\n${JSON.stringify({ id: "fx-3", labels: [1] })}\n`);
    const err = await createFileTracker(file)
      .ready({})
      .catch((e: unknown) => e);
    expect(isDxError(err) && err.code).toBe("tracker_file_invalid");
    expect(isDxError(err) && err.message).toContain(`${file}:3: /labels/0`);
    await writeFile(file, `${JSON.stringify(lines[0])}\n${JSON.stringify(lines[0])}\n`);
    expect(await dxCode(createFileTracker(file).ready({}))).toBe("tracker_file_invalid");
    expect(await createFileTracker(file).versionCheck()).toMatchObject({ ok: false, reason_code: "tracker_file_invalid" });
  });

  it("refuses a missing file", async () => {
    expect(await dxCode(createFileTracker(path.join(dir, "nope.jsonl")).show("fx-1"))).toBe("tracker_file_missing");
  });
});

describe("none tracker", () => {
  it("is the id alone", async () => {
    const t = createNoneTracker();
    expect(await t.show("bd-x1")).toEqual({
      found: true,
      issue: { id: "bd-x1", title: "bd-x1", description: "", acceptance_criteria: "", status: "open", labels: [], blocked_by: [] },
    });
    expect(await t.markInProgress("bd-x1")).toEqual({ ok: true, reason_code: null });
    expect(await dxCode(t.ready({}))).toBe("tracker_ready_unsupported");
    expect(await t.versionCheck()).toMatchObject({ ok: true });
  });
});

describe("createTracker", () => {
  it("builds each type; a relative file path is resolved against cwd", async () => {
    expect((await createTracker({ type: "none" }, { cwd: dir })).type).toBe("none");
    expect((await createTracker({ type: "beads" }, { cwd: dir })).type).toBe("beads");
    const f = await createTracker({ type: "file", path: "issues.jsonl" }, { cwd: dir });
    expect(f.type).toBe("file");
    expect((await f.show("fx-1")).found).toBe(true);
  });
});
