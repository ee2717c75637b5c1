import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { expect } from "vitest";
import { readWave } from "../../src/app/read-wave.js";
import { runCli, treeState } from "../helpers/cli.js";
import { spawnNode } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";
import { cleanEnv } from "../helpers/world.js";
import { get, it, otlpReceiver, slowSandbox, spanAttr, sse, startCli } from "./helpers.js";

// Safe to run: the real `dx-batch serve`, asked for everything it serves, changes nothing in the
// artifact dir or the runner's log dir, and never starts a process, so neither git nor a provider:
// a preload records every child_process call it makes, a `git` first on PATH and the providers'
// commands record being run. The otel endpoint comes from the config file (`otel.endpoint`), and
// the spans of a wave run while it serves arrive.

const SPAWN_RECORDER = `
const cp = require("node:child_process");
const fs = require("node:fs");
const { syncBuiltinESMExports } = require("node:module");
fs.appendFileSync(process.env.DX_TEST_SPAWN_LOG + ".loaded", process.pid + "\\n");
for (const name of ["spawn", "spawnSync", "exec", "execSync", "execFile", "execFileSync", "fork"]) {
  const orig = cp[name];
  cp[name] = function (...args) {
    fs.appendFileSync(process.env.DX_TEST_SPAWN_LOG, JSON.stringify({ name, file: String(args[0]) }) + "\\n");
    return orig.apply(this, args);
  };
}
syncBuiltinESMExports();
`;

it("serve changes no file, starts no process (no git, no provider), and takes otel.endpoint from the config", async ({ bin, tmp }) => {
  const sb = slowSandbox(tmp, 0);
  const W = "wave-safe";
  const first = await runCli(bin, ["start", "--items", "ok-1,rev-2,blk-3", "--wave-id", W, "--config", sb.configPath, "--repo", sb.repo], { cwd: sb.root });
  expect([0, 4], first.stderr).toContain(first.code);

  // Whatever would run git or a provider leaves a mark.
  const marks = path.join(sb.root, "marks.log");
  const spawns = path.join(sb.root, "spawns.log");
  const shims = path.join(sb.root, "shims");
  const preload = path.join(sb.root, "spawn-recorder.cjs");
  writeFileSync(preload, SPAWN_RECORDER);
  // The recorder sees an ES module's named import of child_process (as execa and src/ use it).
  const probeLog = path.join(sb.root, "probe.log");
  execFileSync(
    process.execPath,
    ["--require", preload, "--input-type=module", "-e", 'import { execFileSync } from "node:child_process"; execFileSync("true");'],
    {
      env: { ...process.env, DX_TEST_SPAWN_LOG: probeLog },
    },
  );
  expect(readFileSync(probeLog, "utf8")).toContain('"file":"true"');
  mkdirSync(shims);
  writeFileSync(path.join(shims, "git"), `#!/bin/sh\necho "git $*" >> '${marks}'\nexit 1\n`);
  chmodSync(path.join(shims, "git"), 0o755);
  const agentShim = path.join(sb.root, "provider-shim.mjs");
  writeFileSync(agentShim, `import { appendFileSync } from "node:fs";\nappendFileSync(${JSON.stringify(marks)}, "provider " + process.argv[2] + "\\n");\n`);
  const rx = await otlpReceiver();
  const file = JSON.parse(readFileSync(sb.configPath, "utf8")) as Record<string, unknown>;
  const serveConfig = path.join(sb.root, "serve.config.json");
  writeFileSync(
    serveConfig,
    JSON.stringify({
      ...file,
      otel: { endpoint: rx.url },
      providers: { "agent-a": { command: [process.execPath, agentShim, "agent-a"] }, "agent-b": { command: [process.execPath, agentShim, "agent-b"] } },
    }),
  );

  const runnerDir = path.join(sb.root, "runner");
  const before = { art: treeState(sb.art), runner: treeState(runnerDir) };
  const env = cleanEnv({ PATH: `${shims}:${process.env.PATH ?? ""}`, NODE_OPTIONS: `--require ${preload}`, DX_TEST_SPAWN_LOG: spawns });
  const srv = spawnNode(bin, ["serve", "--config", serveConfig, "--port", "0"], { cwd: sb.root, env });
  try {
    const url = await waitFor(() => /(http:\/\/[^/ ]+)\//.exec(srv.stdout())?.[1], "serve to print its URL");
    expect(srv.stdout()).toContain(`spans to ${rx.url}`);
    const targets = [
      "/",
      "/app.js",
      "/style.css",
      "/api/waves",
      "/api/waves?all=1",
      `/api/waves/${W}`,
      `/api/waves/${W}/report`,
      `/api/waves/${W}/items/rev-2/logs`,
      `/api/waves/${W}/items/rev-2/logs?attempt=1&phase=review`,
      `/api/waves/${W}/items/blk-3/logs?bytes=5`,
      "/api/workers",
      "/metrics",
      "/metrics",
      "/api/waves/no-such-wave",
      "/api/waves/bad$id",
      "/../etc/passwd",
    ];
    for (const t of targets) expect([200, 400, 404], t).toContain((await get(url, t)).status);
    const events: unknown[] = [];
    const stream = sse(url, `/api/waves/${W}/events`, {}, (e) => events.push(e));
    await waitFor(() => events.length >= 10 || null, "ten events of the finished wave");
    stream.close();
    expect({ art: treeState(sb.art), runner: treeState(runnerDir) }).toEqual(before);

    // A wave run while it serves: its attempts become spans, and serve still starts nothing.
    const W2 = "wave-safe-2";
    const second = await startCli(bin, ["start", "--items", "ok-4,blk-5", "--wave-id", W2, "--config", sb.configPath, "--repo", sb.repo], sb.root).exited;
    expect([0, 4], second.stderr).toContain(second.code);
    srv.kill("SIGTERM");
    const end = await srv.exited;
    expect(end.code, end.stderr).toBe(0);
    const spans = rx.requests.flatMap((q) => q.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)));
    const w2 = await readWave(sb.layout, W2);
    const attempts = (w2?.state.items ?? []).flatMap((i) => i.history.map((h) => `${i.beads_id} ${h.phase} ${h.attempt} ${h.provider}`)).sort();
    expect(attempts.length).toBeGreaterThan(0);
    expect(
      spans
        .map((s) =>
          [spanAttr(s, "dx_batch.item_id"), spanAttr(s, "dx_batch.phase"), spanAttr(s, "dx_batch.attempt"), spanAttr(s, "dx_batch.provider")].join(" "),
        )
        .sort(),
    ).toEqual(attempts);
  } finally {
    srv.kill("SIGKILL");
    rx.server.close();
  }
  // The recorder was loaded in serve, and recorded no process.
  expect(readFileSync(`${spawns}.loaded`, "utf8").trim()).toBe(String(srv.pid));
  expect(existsSync(marks) ? readFileSync(marks, "utf8") : "").toBe("");
  expect(existsSync(spawns) ? readFileSync(spawns, "utf8") : "").toBe("");
}, 180_000);
