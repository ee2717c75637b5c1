import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { killProcessGroup } from "../../src/runner/kill-group.js";
import { groupMembers } from "../../src/runner/proc.js";

// The one process-group killer: SIGTERM, a grace, SIGKILL, to the whole group, with a record.

async function group(script: string): Promise<number> {
  const child = spawn("sh", ["-c", script], { detached: true, stdio: "ignore" });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error("spawn failed");
  // Let the shell arm its trap and start its child.
  for (let i = 0; i < 100 && (await groupMembers(pid)).length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  return pid;
}

describe("killProcessGroup", () => {
  it("a group that obeys SIGTERM goes within the grace, not forced", async () => {
    const pgid = await group("sleep 30 & wait");
    const r = await killProcessGroup(pgid, { grace_ms: 5_000 });
    expect(r).toMatchObject({ pgid, signal: "SIGTERM", forced: false, gone: true });
    expect(r.duration_ms).toBeLessThan(5_000);
    expect(await groupMembers(pgid)).toEqual([]);
  });

  it("a group that ignores SIGTERM is sent SIGKILL after the grace, grandchild included", async () => {
    const pgid = await group("trap '' TERM; sh -c \"trap '' TERM; sleep 30\" & wait");
    const r = await killProcessGroup(pgid, { grace_ms: 300 });
    expect(r).toMatchObject({ pgid, signal: "SIGTERM", forced: true, gone: true });
    expect(r.duration_ms).toBeGreaterThanOrEqual(300);
    expect(await groupMembers(pgid)).toEqual([]);
  });

  it("an empty group or a pgid of 0 or 1 is left alone", async () => {
    for (const pgid of [0, 1, 2 ** 22 + 12_345]) {
      expect(await killProcessGroup(pgid, { grace_ms: 100 })).toMatchObject({ signal: null, forced: false, gone: true });
    }
  });
});
