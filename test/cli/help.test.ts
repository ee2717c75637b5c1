import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import { buildCli } from "../helpers/build.js";
import { fileTmp, it } from "../helpers/fixtures.js";
import { expectRefusal, runCli } from "../helpers/cli.js";
import { REPO } from "../helpers/world.js";

// Every command answers --help with exit 0, and --version prints the package's version.

const bin = buildCli();
const cwd = fileTmp.make();

const pkgVersion = (): string => {
  const v: unknown = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8"));
  if (typeof v !== "object" || v === null || !("version" in v) || typeof v.version !== "string") throw new Error("package.json has no version");
  return v.version;
};

const COMMANDS = [
  ["start"],
  ["resume"],
  ["retry"],
  ["list"],
  ["logs"],
  ["cancel"],
  ["status"],
  ["check"],
  ["report"],
  ["doctor"],
  ["demo"],
  ["runner"],
  ["runner", "start"],
  ["runner", "check"],
  ["runner", "status"],
  ["runner", "stop"],
  ["runner", "prune"],
  ["runner", "preflight"],
  ["runner", "report"],
];

describe("--help and --version", () => {
  it("dx-batch --version and -V print the package version", async () => {
    for (const flag of ["--version", "-V"]) {
      const r = await runCli(bin, [flag], { cwd });
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(pkgVersion());
      expect(r.stderr).toBe("");
    }
  });

  it("dx-batch --help lists every command", async () => {
    const r = await runCli(bin, ["--help"], { cwd });
    expect(r.code).toBe(0);
    for (const c of ["start", "resume", "retry", "cancel", "list", "status", "check", "report", "logs", "doctor", "runner", "demo"])
      expect(r.stdout).toMatch(new RegExp(`^\\s+${c}\\b`, "m"));
  });

  it.each(COMMANDS.map((c) => [c.join(" "), c]))("%s --help exits 0 with usage on stdout", async (_name, cmd) => {
    const r = await runCli(bin, [...cmd, "--help"], { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Usage: dx-batch ${cmd.join(" ")}`);
    expect(r.stderr).toBe("");
  });

  it("start, resume and retry --help give the exit codes (issue #13)", async () => {
    for (const cmd of ["start", "resume", "retry"]) {
      const r = await runCli(bin, [cmd, "--help"], { cwd });
      // Commander wraps long descriptions: compare with the line breaks taken out.
      expect(r.stdout.replace(/\s+/g, " "), `${cmd} --help`).toContain(
        "exit 0 completed with every item approved; 4 completed with some not approved; 1 refused or failed; 2 paused",
      );
    }
  });

  it("read commands document --config, --wave-id and their output flags", async () => {
    for (const [cmd, flags] of [
      ["status", ["--config", "--wave-id", "--json", "--watch"]],
      ["check", ["--config", "--wave-id", "--json"]],
      ["report", ["--config", "--wave-id", "--format"]],
      ["doctor", ["--config", "--wave-id", "--json", "--fix"]],
    ] as const) {
      const r = await runCli(bin, [cmd, "--help"], { cwd });
      for (const f of flags) expect(r.stdout, `${cmd} --help`).toContain(f);
    }
  });

  it("an unknown command or option is a one-line usage error with a remedy, exit 1", async () => {
    expectRefusal(await runCli(bin, ["nosuch"], { cwd }), "usage");
    expectRefusal(await runCli(bin, ["status", "--wave-id", "w1", "--bogus"], { cwd }), "usage");
    expectRefusal(await runCli(bin, ["status", "--wave-id"], { cwd }), "usage");
    expectRefusal(await runCli(bin, ["status"], { cwd, env: { DX_BATCH_ARTIFACT_DIR: path.join(cwd, "no-waves") } }), "wave_not_found"); // §15.2: the newest wave by default
  });
});
