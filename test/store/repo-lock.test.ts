import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import { REPO_LOCK_NAME, withRepoLock } from "../../src/store/repo-lock.js";
import { readLease } from "../../src/store/lease.js";
import { selfIdentity } from "../../src/store/proc.js";
import { it, tmp } from "../helpers/fixtures.js";
import { foreignRepoLock } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";

// `git worktree add` on one repository is serialised across processes (issue 9), not only by the
// in-process queue: the lock is a lease file in the repository's common git dir, so two waves
// (two controllers, any artifact_dir) creating worktrees at once take turns.

describe("the repository lock", () => {
  it("names this process while fn runs, and is gone after", async () => {
    const dir = tmp.make();
    const file = path.join(dir, REPO_LOCK_NAME);
    const seen = await withRepoLock(dir, () => Promise.resolve(readLease(file)));
    expect(seen).toMatchObject({ kind: "ok", holder: { pid: process.pid, host: selfIdentity().host } });
    expect(existsSync(file)).toBe(false);
  });

  it("waits while another live process holds it, and goes in once that process is gone", async () => {
    const dir = tmp.make();
    mkdirSync(dir, { recursive: true });
    // Another controller's lock (another process of this host), far from its TTL.
    const other = await foreignRepoLock(dir);
    let entered = false;
    const p = withRepoLock(dir, () => {
      entered = true;
      return Promise.resolve("mine");
    });
    // Several rounds of its polling go by without it going in.
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 100));
      expect(entered).toBe(false);
    }
    await other.killAndWait();
    await waitFor(() => entered, "the wait ends once the holder is gone");
    expect(await p).toBe("mine");
  });
});
