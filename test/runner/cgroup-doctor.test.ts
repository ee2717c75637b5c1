import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import { cgroupBase, leafName } from "../../src/runner/cgroup.js";
import { buildCli } from "../helpers/build.js";
import { runCli } from "../helpers/cli.js";
import { Ledger } from "../helpers/events.js";
import { it, tmp } from "../helpers/fixtures.js";
import { pidAlive, sleeper } from "../helpers/procs.js";
import { parseJson, sandbox, writeWave } from "../helpers/world.js";

// doctor and job cgroups left behind (issue #10): a cgroup of the wave whose run is not live is
// listed (a warning while it still holds processes, a note when empty), and --fix kills what is in
// it and removes it. Without --fix nothing is touched.

const bin = buildCli();
const BASE = cgroupBase(process.env);
if (BASE === null) console.log("cgroup v2 is not writable here (or DX_BATCH_NO_CGROUP=1): the doctor cgroup test is skipped");

interface DoctorDoc {
  ok: boolean;
  issues: { type: string; severity: string; message: string }[];
  fixed: string[];
}

describe.skipIf(BASE === null)("doctor and leftover job cgroups", () => {
  it("lists the wave's cgroups of runs that are not live; --fix kills their processes and removes them", async () => {
    const W = `wave-cgd-${randomBytes(3).toString("hex")}`;
    const sb = sandbox(tmp);
    writeWave(sb, W, new Ledger({ items: ["bd-a1"] }).start().implement("bd-a1", "opencode", "completed").events);
    const leaf = (store: string, ri: string) => path.join(BASE ?? "", leafName(store, W, ri) ?? "");
    const busy = leaf(sb.config.runner_log_dir, "ri-left-busy");
    const empty = leaf(sb.config.runner_log_dir, "ri-left-empty");
    // The same wave id in another store (another runner log directory).
    const other = leaf(path.join(sb.root, "elsewhere"), "ri-other");
    for (const d of [busy, empty, other]) mkdirSync(d);
    const escapee = await sleeper();
    writeFileSync(path.join(busy, "cgroup.procs"), `${escapee.pid}\n`);
    try {
      const doctor = (...flags: string[]) => runCli(bin, ["doctor", "--config", sb.configPath, "--wave-id", W, "--json", ...flags], { cwd: sb.root });
      const before = await doctor();
      expect(before.code, before.stderr).toBe(1);
      const d = parseJson(before.stdout) as DoctorDoc;
      const left = d.issues.filter((i) => i.type === "leftover_cgroup");
      expect(left.map((i) => i.severity).sort()).toEqual(["info", "warning"]);
      expect(left.find((i) => i.severity === "warning")?.message).toContain(`${escapee.pid}`);
      // A plain doctor changed nothing.
      expect(pidAlive(escapee.pid)).toBe(true);
      expect(existsSync(busy) && existsSync(empty)).toBe(true);

      const fix = await doctor("--fix");
      const f = parseJson(fix.stdout) as DoctorDoc;
      expect(f.fixed.join("\n")).toContain(`killed pid(s) ${escapee.pid} in ${busy}`);
      expect(f.fixed).toContain(`removed ${empty}`);
      expect(existsSync(busy)).toBe(false);
      expect(existsSync(empty)).toBe(false);
      expect(pidAlive(escapee.pid)).toBe(false);
      // Another store's wave of the same id is not this wave.
      expect(existsSync(other)).toBe(true);
    } finally {
      await escapee.killAndWait();
      for (const d of [busy, empty, other]) {
        try {
          rmdirSync(d);
        } catch {
          // removed by the test
        }
      }
    }
  });
});
