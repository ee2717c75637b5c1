import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ProviderConfig } from "../../src/config/types.js";
import { createBuiltinRunner, type BuiltinRunner } from "../../src/runner/builtin.js";
import type { JobRef, JobSpec } from "../../src/runner/port.js";
import { foreignCredentials } from "../../src/runner/providers/credentials.js";
import { scanMarked } from "../../src/runner/marked-procs.js";
import { recordedConfig } from "../../src/app/wire.js";
import { CONFIG_DEFAULTS, defaultRoots } from "../../src/config/defaults.js";
import { filesUnder } from "../helpers/tmp.js";
import { cleanup, fixtureEnv, makeWorkspace, tempDir, trackGroup, type Workspace } from "./helpers/env.js";

// Issue #10 at the runner: an agent that swaps its contract file for a link to a secret, and
// credentials that must stay with their own provider.

afterEach(cleanup);

const GLM = "glm-token-SECRET-4b1d9e";
const OTHER = "openai-key-SECRET-77aa";

/** A fake agent CLI that dumps its environment to $DUMP_DIR/<name>.env and prints a contract. */
function dumpingAgent(dir: string, name: string): string {
  const bin = path.join(dir, name);
  writeFileSync(
    bin,
    `#!/bin/sh
env > "$DUMP_DIR/${name}.$DX_BATCH_JOB_ID.env"
if [ -n "$LINK_CONTRACT_TO" ]; then ln -sf "$LINK_CONTRACT_TO" "$DX_BATCH_CONTRACT_FILE"; fi
echo 'CONTRACT:JSON:{"phase":"implement","beads_id":"'"$DX_BATCH_ITEM_ID"'","status":"completed","artifacts":{"files_changed":[],"commits":[]},"timestamp":"2026-01-01T00:00:00Z"}'
`,
  );
  chmodSync(bin, 0o755);
  return bin;
}

interface Setup {
  ws: Workspace;
  runner: BuiltinRunner;
  dump: string;
}

function setup(env: Record<string, string>, providers: Record<string, ProviderConfig> = {}): Setup {
  const ws = makeWorkspace();
  const bin = tempDir("dx-hostile-bin-");
  const dump = tempDir("dx-hostile-dump-");
  dumpingAgent(bin, "codex");
  dumpingAgent(bin, "my-agent");
  const base = fixtureEnv({ ...env, DUMP_DIR: dump });
  const runner = createBuiltinRunner({
    log_dir: ws.logDir,
    providers,
    workspace: { workspace_root: ws.root, allowed_prefixes: [], protected_paths: [] },
    max_log_mb: 50,
    env: { ...base, PATH: `${bin}:${base.PATH ?? ""}` },
    wave_id: "wave-test",
    stop_grace_ms: 1_000,
  });
  return { ws, runner, dump };
}

let seq = 0;
function spec(ws: Workspace, item: string, provider: string): JobSpec {
  return {
    job_id: item,
    item_id: item,
    wave_id: "wave-test",
    phase: "implement",
    attempt: 1,
    provider,
    run_instance: `ri-h-${++seq}`,
    worktree: ws.worktree(item),
    prompt_file: ws.prompt("do it\n"),
    contract_file: path.join(path.dirname(ws.logDir), "contracts", `${item}.implement.attempt1.contract.json`),
  };
}

const refOf = (s: JobSpec): JobRef => ({ job_id: s.job_id, provider: s.provider, run_instance: s.run_instance });

async function run(runner: BuiltinRunner, s: JobSpec): Promise<void> {
  const done = new Promise<void>((resolve) => {
    const off = runner.onExit((ref) => {
      if (ref.run_instance === s.run_instance) {
        off();
        resolve();
      }
    });
  });
  execFileSync("mkdir", ["-p", path.dirname(s.contract_file)]);
  const started = await runner.start(s);
  trackGroup(started.pgid);
  await done;
}

describe("secrets by provider", () => {
  it("a GLM token never reaches a codex or a command agent; a command agent gets its env and pass_env", async () => {
    const { ws, runner, dump } = setup(
      { CC_GLM_AUTH_TOKEN: GLM, ZAI_API_KEY: GLM, OPENAI_API_KEY: OTHER, CODEX_API_KEY: "codex-own", MY_TOKEN: "mine" },
      { "my-agent": { command: ["my-agent"], stdin: "none", env: { MY_SETTING: "x" }, pass_env: ["MY_TOKEN"] } },
    );
    const codex = spec(ws, "bd-cx1", "codex");
    await run(runner, codex);
    const cmd = spec(ws, "bd-cm1", "my-agent");
    await run(runner, cmd);
    const codexEnv = readFileSync(path.join(dump, "codex.bd-cx1.env"), "utf8");
    expect(codexEnv).not.toContain(GLM);
    expect(codexEnv).toContain("CODEX_API_KEY=codex-own");
    expect(codexEnv).toContain(`OPENAI_API_KEY=${OTHER}`);
    const cmdEnv = readFileSync(path.join(dump, "my-agent.bd-cm1.env"), "utf8");
    expect(cmdEnv).not.toContain(GLM);
    expect(cmdEnv).not.toContain(OTHER);
    expect(cmdEnv).not.toContain("codex-own");
    expect(cmdEnv).toContain("MY_SETTING=x");
    expect(cmdEnv).toContain("MY_TOKEN=mine");
    // Nothing of the token under the runner's files either.
    for (const f of filesUnder(ws.logDir)) expect(readFileSync(f, "utf8")).not.toContain(GLM);
  });

  it("the built-ins keep their own variables and lose every other provider's", () => {
    expect(foreignCredentials("codex", {})).toContain("CC_GLM_AUTH_TOKEN");
    expect(foreignCredentials("codex", {})).not.toContain("CODEX_API_KEY");
    expect(foreignCredentials("cc-glm", {})).not.toContain("CC_GLM_AUTH_TOKEN");
    expect(foreignCredentials("cc-glm", {})).toContain("CODEX_API_KEY");
    // A command provider named like a built-in does not inherit the built-in's credentials.
    expect(foreignCredentials("codex", { codex: { command: ["x"] } })).toContain("CODEX_API_KEY");
    // Another provider's pass_env is its credential: removed for everyone else.
    expect(foreignCredentials("gemini", { a: { command: ["x"], pass_env: ["A_TOKEN"] } })).toContain("A_TOKEN");
  });

  it("the recorded config redacts every provider env value unless listed in public_env", () => {
    const rec = recordedConfig({
      ...CONFIG_DEFAULTS,
      ...defaultRoots({ DX_BATCH_HOME: "/h" }),
      tracker: { type: "none" },
      providers: { "cc-glm": { env: { GLM_EXTRA_CREDS: "s3cr3t", REGION: "eu" }, public_env: ["REGION"] } },
    });
    expect(rec.providers["cc-glm"]?.env).toEqual({ GLM_EXTRA_CREDS: "<redacted>", REGION: "eu" });
    expect(JSON.stringify(rec)).not.toContain("s3cr3t");
  });
});

describe("contracts read safely", () => {
  for (const target of ["secret", "/proc/self/environ"] as const) {
    it(`a contract file that is a symlink to ${target === "secret" ? "a secret file" : target} is refused, and no byte of the target lands under the roots`, async () => {
      const secretDir = tempDir("dx-hostile-secret-");
      const secretFile = path.join(secretDir, "token");
      writeFileSync(secretFile, "sk-SECRETTOKEN-0123456789\n", { mode: 0o600 });
      const linkTo = target === "secret" ? secretFile : target;
      const { ws, runner } = setup({ LINK_CONTRACT_TO: linkTo, MARK_ENV_SECRET: "envSECRETvalue42" });
      const s = spec(ws, "bd-ln1", "codex");
      await run(runner, s);
      const src = await runner.readContract(refOf(s));
      expect(src.found).toBe(false);
      if (src.found) return;
      expect(src.reason_code).toBe("contract_file_unsafe");
      expect(src.detail).toContain("symbolic link");
      // The link was taken away from the contract path; no copy was made.
      expect(existsSync(s.contract_file)).toBe(false);
      const needles = target === "secret" ? ["sk-SECRET"] : ["envSECRETvalue42", "MARK_ENV_SECRET"];
      for (const f of [...filesUnder(ws.logDir), ...filesUnder(path.dirname(s.contract_file))]) {
        const text = readFileSync(f, "utf8");
        for (const n of needles) expect(text, f).not.toContain(n);
      }
      expect(src.detail).not.toMatch(/sk-SECRET|envSECRET/);
    });
  }

  it("a regular contract file is copied into the runner's files and removed from the agent's reach", async () => {
    const { ws, runner } = setup({});
    const s = spec(ws, "bd-cp1", "codex");
    await run(runner, s);
    const body = '{"phase":"implement","copied":true}';
    writeFileSync(s.contract_file, body);
    expect(await runner.readContract(refOf(s))).toEqual({ found: true, source: "file", text: body });
    expect(existsSync(s.contract_file)).toBe(false);
    const copy = path.join(ws.logDir, "codex", "bd-cp1.contract.json");
    expect(readFileSync(copy, "utf8")).toBe(body);
    expect(statSync(copy).mode & 0o777).toBe(0o600);
    // Read again: the copy answers.
    expect(await runner.readContract(refOf(s))).toEqual({ found: true, source: "file", text: body });
  });

  it("a FIFO, a hard link or a file over 1 MiB is refused without hanging or reading it", async () => {
    const { ws, runner } = setup({});
    const s = spec(ws, "bd-ff1", "codex");
    await run(runner, s);
    execFileSync("mkfifo", [s.contract_file]);
    const fifo = await runner.readContract(refOf(s));
    expect(fifo).toMatchObject({ found: false, reason_code: "contract_file_unsafe" });
    const other = path.join(tempDir(), "other.json");
    writeFileSync(other, '{"phase":"implement"}');
    execFileSync("ln", [other, s.contract_file]);
    expect(await runner.readContract(refOf(s))).toMatchObject({ found: false, reason_code: "contract_file_unsafe" });
    writeFileSync(s.contract_file, "x".repeat(1024 * 1024 + 1));
    expect(await runner.readContract(refOf(s))).toMatchObject({ found: false, reason_code: "contract_too_large" });
  });

  it("an oversized CONTRACT:JSON: marker in the log is contract_too_large, not contract_missing", async () => {
    const { ws, runner } = setup({});
    const s = spec(ws, "bd-big1", "codex");
    await run(runner, s);
    const log = path.join(ws.logDir, "codex", "bd-big1.log");
    writeFileSync(log, `CONTRACT:JSON:{"phase":"implement","pad":"${"x".repeat(1024 * 1024 + 10)}"}\n`);
    expect(await runner.readContract(refOf(s))).toMatchObject({ found: false, reason_code: "contract_too_large" });
  });
});

describe("jobs that cannot escape", () => {
  it("stop finds and stops a setsid child and a double-forked grandchild by the job's marker", async () => {
    const ws = makeWorkspace();
    const bin = tempDir("dx-escape-bin-");
    const agent = path.join(bin, "escaper");
    // One child leaves the group with setsid; one is double-forked through a new session (orphaned, reparented to init).
    writeFileSync(
      agent,
      `#!/bin/sh
setsid sleep 300 </dev/null >/dev/null 2>&1 &
( setsid sh -c 'sleep 301 </dev/null >/dev/null 2>&1 &' & )
exec sleep 302
`,
    );
    chmodSync(agent, 0o755);
    const runner = createBuiltinRunner({
      log_dir: ws.logDir,
      providers: { escaper: { command: [agent], stdin: "none" } },
      workspace: { workspace_root: ws.root, allowed_prefixes: [], protected_paths: [] },
      max_log_mb: 50,
      env: fixtureEnv(),
      wave_id: "wave-test",
      stop_grace_ms: 500,
    });
    const s = spec(ws, "bd-esc1", "escaper");
    execFileSync("mkdir", ["-p", path.dirname(s.contract_file)]);
    const started = await runner.start(s);
    trackGroup(started.pgid);
    const mine = () => scanMarked().filter((m) => m.run_instance === s.run_instance);
    const deadline = Date.now() + 10_000;
    while (mine().filter((m) => m.pgid !== started.pgid).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const outside = mine().filter((m) => m.pgid !== started.pgid);
    expect(outside.length).toBeGreaterThanOrEqual(2);
    const r = await runner.stop(refOf(s));
    expect(r.stopped).toBe(true);
    expect(mine()).toEqual([]);
  });
});
