import { chmodSync, statSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect } from "vitest";
import { ensureSecureDir, forgetSecureDirs, registerStateRoot } from "../../src/store/secure-dir.js";
import { it } from "../helpers/fixtures.js";

// ensureSecureDir remembers every directory it checked (they are ours and 0700 from then on);
// rememberLeaf: false checks a directory without remembering it, for the one directory per item
// a wave of 10,000 items would otherwise leave in that set.

afterEach(() => forgetSecureDirs());

describe("ensureSecureDir", () => {
  it("creates the directories 0700 and refuses one someone made group-writable", ({ tmp }) => {
    const root = registerStateRoot(path.join(tmp.make(), "root"));
    const dir = path.join(root, "a", "b");
    ensureSecureDir(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    chmodSync(path.join(root, "a"), 0o770);
    forgetSecureDirs();
    expect(() => ensureSecureDir(dir)).toThrow(expect.objectContaining({ code: "artifact_dir_insecure" }));
  });

  it("a remembered directory is not checked again; one checked with rememberLeaf: false is, while its parents are remembered", ({ tmp }) => {
    const root = registerStateRoot(path.join(tmp.make(), "root"));
    const kept = path.join(root, "items", "kept");
    const item = path.join(root, "items", "x-1");
    ensureSecureDir(kept);
    ensureSecureDir(item, { rememberLeaf: false });
    expect(statSync(item).mode & 0o777).toBe(0o700);
    chmodSync(kept, 0o777);
    chmodSync(item, 0o777);
    expect(() => ensureSecureDir(kept)).not.toThrow();
    expect(() => ensureSecureDir(item, { rememberLeaf: false })).toThrow(expect.objectContaining({ code: "artifact_dir_insecure" }));
    // The parent stayed trusted: making it insecure now goes unseen until the set is forgotten.
    chmodSync(item, 0o700);
    chmodSync(path.join(root, "items"), 0o777);
    expect(() => ensureSecureDir(item, { rememberLeaf: false })).not.toThrow();
  });
});
