import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { SyncLater, syncPaths } from "../../src/store/sync-later.js";

// Background fsync (issue #14): the files stay as written, a failure reaches drain() and is not
// swallowed, and drain() waits for everything added before it.

describe("syncPaths and SyncLater", () => {
  it("syncs files and their directories, and skips a file removed meanwhile", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "dxb-sync-"));
    const a = path.join(dir, "a.json");
    writeFileSync(a, "{}\n");
    await syncPaths([a, path.join(dir, "gone.json")]);
    expect(readFileSync(a, "utf8")).toBe("{}\n");
  });

  it("drain settles after every file added before it, and reports a failed fsync once", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "dxb-sync-"));
    const later = new SyncLater();
    for (let i = 0; i < 20; i++) {
      const f = path.join(dir, `f${i}`);
      writeFileSync(f, String(i));
      later.add(f);
    }
    await expect(later.drain()).resolves.toBeUndefined();
    // procfs refuses fsync (EINVAL) on its files: a stand-in for a disk that lost the write.
    later.add("/proc/self/status");
    await expect(later.drain()).rejects.toThrow();
    await expect(later.drain()).resolves.toBeUndefined();
  });
});
