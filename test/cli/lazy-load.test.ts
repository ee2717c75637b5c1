import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect } from "vitest";
import { Ledger } from "../helpers/events.js";
import { buildCli, REPO } from "../helpers/build.js";
import { fileTmp, it, tmp } from "../helpers/fixtures.js";
import { runCli } from "../helpers/cli.js";
import { agentSandbox, sandbox, writeIssues, writeWave } from "../helpers/world.js";

// Start-up cost is the modules a command loads (issue #14): `--version`, `--help` and the read
// commands declare every command but import only what they run (src/cli/main.ts). This counts the
// modules a real process loads, through a loader hook (ES modules) and require.cache (CommonJS),
// and names the ones that must stay out. It asserts module sets, never a duration.

const bin = buildCli();

/** The preload that records every module the process loads into $DX_LOADED_FILE (shared with the bench). */
const preload = pathToFileURL(path.join(REPO, "bench", "fixtures", "count-modules.mjs")).href;

/** The files (not node: built-ins) `dx-batch …args` loads, as paths. */
async function loaded(args: string[], cwd: string): Promise<{ code: number | null; files: string[] }> {
  const out = path.join(fileTmp.make(), "loaded.txt");
  writeFileSync(out, "");
  const r = await runCli(bin, args, { cwd, env: { NODE_OPTIONS: `--import=${preload}`, DX_LOADED_FILE: out } });
  const files = new Set<string>();
  for (const line of readFileSync(out, "utf8").split("\n")) {
    if (line === "" || line.startsWith("node:")) continue;
    const f = line.startsWith("file:") ? new URL(line).pathname : line;
    if (f.includes("/bench/fixtures/count-modules")) continue;
    // A chunk of the bundle (scripts/bundle.mjs) stands for the modules of ours it holds.
    for (const m of f.startsWith(`${bundleDir}/`) ? bundledModules(f) : [f]) files.add(m);
  }
  return { code: r.code, files: [...files].sort() };
}

/** The build's dist/ (bin/dx-batch.js runs dist/bin/, made from dist/ by scripts/bundle.mjs). */
const distDir = path.join(path.dirname(path.dirname(bin)), "dist");
const bundleDir = path.join(distDir, "bin");
const bundleMeta = JSON.parse(readFileSync(path.join(bundleDir, "meta.json"), "utf8")) as { outputs: Record<string, { inputs: Record<string, unknown> }> };

/** The dist/ modules a chunk of the bundle holds, as the paths they load from unbundled. */
function bundledModules(chunk: string): string[] {
  const o = bundleMeta.outputs[path.relative(distDir, chunk)];
  if (o === undefined) throw new Error(`${chunk} is not in ${bundleDir}/meta.json`);
  return Object.keys(o.inputs).map((i) => path.join(distDir, i));
}

// What a command that only reads or prints must not pay for.
const HEAVY: readonly [string, RegExp][] = [
  ["bullmq", /\/node_modules\/bullmq\//],
  ["ioredis", /\/node_modules\/ioredis\//],
  ["opentelemetry", /\/node_modules\/@opentelemetry\//],
  ["prom-client", /\/node_modules\/prom-client\//],
  ["log-update", /\/node_modules\/log-update\//],
  ["execa", /\/node_modules\/execa\//],
  // ajv's compiler; the precompiled config validator needs only its runtime helpers.
  ["ajv compiler", /\/node_modules\/ajv\/dist\/(?!runtime\/)/],
  // TypeBox (some 200 modules): the store's checks are precompiled; it loads only to word a refusal.
  ["typebox", /\/node_modules\/@sinclair\/typebox\//],
  ["the runner", /\/dist\/runner\/(?!paths\.js$)/],
  ["the controller", /\/dist\/controller\//],
  ["the queue", /\/dist\/(queue\/(?!protocol\.js$)|worker\/)/],
  ["the dashboard", /\/dist\/serve\//],
];

function heavyIn(files: readonly string[]): string[] {
  return HEAVY.flatMap(([name, re]) => files.filter((f) => re.test(f)).map((f) => `${name}: ${f}`));
}

describe("lazy CLI: what a command loads", () => {
  it("--version and --help load the command declarations and commander, nothing they do not run", async () => {
    const cwd = fileTmp.make();
    for (const args of [["--version"], ["--help"], ["check", "--help"], ["runner", "start", "--help"]]) {
      const r = await loaded(args, cwd);
      expect(r.code, args.join(" ")).toBe(0);
      expect(heavyIn(r.files), args.join(" ")).toEqual([]);
      // No config or store module either: declaring a command reads nothing.
      expect(
        r.files.filter((f) => /\/dist\/(config|store)\//.test(f)),
        args.join(" "),
      ).toEqual([]);
    }
  });

  it("check, status and list read a wave without the runner, the queue, the dashboard, ajv's compiler or TypeBox", async () => {
    const sb = sandbox(tmp);
    writeWave(sb, "wave-1", new Ledger({ items: ["bd-a1", "bd-b2"] }).events);
    for (const args of [["check", "--wave-id", "wave-1"], ["status", "--wave-id", "wave-1"], ["list"]]) {
      const r = await loaded([...args, "--config", sb.configPath], sb.root);
      expect(r.code, args.join(" ")).toBe(0);
      expect(heavyIn(r.files), args.join(" ")).toEqual([]);
      // The config was validated, by the precompiled validator.
      expect(r.files.some((f) => f.endsWith("/dist/config/validator.generated.js"))).toBe(true);
      // The wave's ledger and snapshot were checked, by the precompiled store checks.
      expect(r.files.some((f) => f.endsWith("/dist/store/checks.generated.js"))).toBe(true);
    }
  });

  it("start runs a wave (implement, a revision, review) without TypeBox, execa, the live table (not a terminal), ajv's compiler, the queue or the dashboard", async () => {
    // Issues from a Beads-shaped file: each is checked by the precompiled issue check.
    const issues = path.join(tmp.make("dx-lazy-issues-"), "issues.jsonl");
    writeIssues(issues, ["ok-1", "rev-1"]);
    const sb = agentSandbox(tmp, { tracker: { type: "file", path: issues } });
    const r = await loaded(["start", "--config", sb.configPath, "--items", "ok-1,rev-1", "--wave-id", "lazy-1"], sb.root);
    expect(r.code).toBe(0);
    const notForStart = new Set([
      "bullmq",
      "ioredis",
      "opentelemetry",
      "prom-client",
      "log-update",
      "execa",
      "ajv compiler",
      "typebox",
      "the queue",
      "the dashboard",
    ]);
    expect(heavyIn(r.files).filter((h) => notForStart.has(h.slice(0, h.indexOf(":"))))).toEqual([]);
    // The contracts were judged by the precompiled validators, and the runner and controller ran.
    expect(r.files.some((f) => f.endsWith("/dist/contract/implement-validator.generated.js"))).toBe(true);
    expect(r.files.some((f) => f.endsWith("/dist/contract/review-validator.generated.js"))).toBe(true);
    expect(r.files.some((f) => f.endsWith("/dist/controller/controller.js"))).toBe(true);
    expect(r.files.some((f) => f.endsWith("/dist/tracker/issue-check.generated.js"))).toBe(true);
  });
});
