import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import os, { tmpdir } from "node:os";
import path, { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CONFIG_DEFAULTS } from "../../src/config/defaults.js";
import { loadConfig, type LoadConfigInput } from "../../src/config/load.js";
import { DxError } from "../../src/errors.js";

let dir: string;
let cwd: string;
let emptyPath: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "dx-config-"));
  cwd = join(dir, "cwd");
  emptyPath = join(dir, "empty-bin");
  mkdirSync(cwd);
  mkdirSync(emptyPath);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const write = (path: string, value: unknown): string => {
  writeFileSync(path, typeof value === "string" ? value : JSON.stringify(value, null, 2));
  return path;
};
const load = (o: Partial<LoadConfigInput> = {}) => loadConfig({ flags: {}, cwd, env: { PATH: emptyPath }, ...o });

function thrown(f: () => unknown): DxError {
  try {
    f();
  } catch (e) {
    if (e instanceof DxError) return e;
    throw e;
  }
  throw new Error("expected a DxError");
}

function expectOneLine(e: DxError): void {
  expect(e.exitCode).toBe(1);
  expect(e.message).not.toContain("\n");
  expect(e.remedy).toEqual(expect.any(String));
  expect(e.remedy).not.toContain("\n");
}

describe("defaults", () => {
  it("resolves every key when there is no file, no env and no flag", () => {
    const { config, source } = load();
    expect(source).toBeNull();
    // The defaults' values are SPEC §3's, written once in CONFIG_DEFAULTS; the README publishes them
    // from there (test/docs/readme.test.ts). Here: the loader adds the state roots and the tracker.
    expect(config).toEqual({
      ...CONFIG_DEFAULTS,
      artifact_dir: path.join(os.homedir(), ".local/state/dx-batch/artifacts"),
      runner_log_dir: path.join(os.homedir(), ".local/state/dx-batch/runner"),
      workspace_root: path.join(os.homedir(), ".local/state/dx-batch/worktrees"),
      tracker: { type: "none" },
    });
  });

  it("puts the default roots under DX_BATCH_HOME, else XDG_STATE_HOME/dx-batch, else ~/.local/state/dx-batch; a specific variable wins", () => {
    const roots = (env: Record<string, string>) => {
      const c = load({ env: { PATH: emptyPath, ...env } }).config;
      return [c.artifact_dir, c.runner_log_dir, c.workspace_root];
    };
    expect(roots({ HOME: "/home/u" })).toEqual([
      "/home/u/.local/state/dx-batch/artifacts",
      "/home/u/.local/state/dx-batch/runner",
      "/home/u/.local/state/dx-batch/worktrees",
    ]);
    expect(roots({ HOME: "/home/u", XDG_STATE_HOME: "/x/state" })).toEqual([
      "/x/state/dx-batch/artifacts",
      "/x/state/dx-batch/runner",
      "/x/state/dx-batch/worktrees",
    ]);
    expect(roots({ XDG_STATE_HOME: "/x/state", DX_BATCH_HOME: "/d" })).toEqual(["/d/artifacts", "/d/runner", "/d/worktrees"]);
    expect(roots({ DX_BATCH_HOME: "/d", DX_BATCH_ARTIFACT_DIR: "/a", DX_RUNNER_LOG_BASE: "/r", DX_BATCH_WORKSPACE_ROOT: "/w" })).toEqual(["/a", "/r", "/w"]);
    // The seed's /tmp/dx-batch stays a valid configured value.
    expect(roots({ DX_BATCH_ARTIFACT_DIR: "/tmp/dx-batch" })[0]).toBe("/tmp/dx-batch");
  });

  it("defaults the tracker to beads when an executable bd is on PATH", () => {
    const bin = join(dir, "bin");
    mkdirSync(bin);
    write(join(bin, "bd"), "#!/bin/sh\nexit 0\n");
    chmodSync(join(bin, "bd"), 0o644);
    expect(load({ env: { PATH: `${emptyPath}:${bin}` } }).config.tracker).toEqual({ type: "none" });
    chmodSync(join(bin, "bd"), 0o755);
    expect(load({ env: { PATH: `${emptyPath}:${bin}` } }).config.tracker).toEqual({ type: "beads" });
    expect(load({ env: {} }).config.tracker).toEqual({ type: "none" });
  });

  it("hands out fresh arrays, so one caller's change cannot leak into the next load", () => {
    const a = load().config;
    a.retry_chain.push("x");
    a.allowed_prefixes.push("/x");
    expect(load().config.retry_chain).toEqual(["opencode", "cc-glm", "blocked"]);
    expect(load().config.allowed_prefixes).toEqual([]);
  });
});

describe("discovery", () => {
  it("uses --config, then $DX_BATCH_CONFIG, then ./dx-batch.config.json", () => {
    const flagFile = write(join(dir, "flag.json"), { max_parallel: 11 });
    const envFile = write(join(dir, "env.json"), { max_parallel: 12 });
    const localFile = write(join(cwd, "dx-batch.config.json"), { max_parallel: 13 });
    const env = { PATH: emptyPath, DX_BATCH_CONFIG: envFile };

    expect(load({ flags: { config: flagFile }, env })).toMatchObject({ source: flagFile, config: { max_parallel: 11 } });
    expect(load({ env })).toMatchObject({ source: envFile, config: { max_parallel: 12 } });
    expect(load()).toMatchObject({ source: localFile, config: { max_parallel: 13 } });
    rmSync(localFile);
    expect(load()).toMatchObject({ source: null, config: { max_parallel: 3 } });
  });

  it("resolves --config and $DX_BATCH_CONFIG against cwd", () => {
    mkdirSync(join(cwd, "conf"));
    const file = write(join(cwd, "conf", "x.json"), { max_attempts: 5 });
    expect(load({ flags: { config: "conf/x.json" } })).toMatchObject({ source: file, config: { max_attempts: 5 } });
    expect(load({ env: { PATH: emptyPath, DX_BATCH_CONFIG: "conf/x.json" } }).source).toBe(file);
  });

  it("refuses an explicit --config or $DX_BATCH_CONFIG that does not exist", () => {
    write(join(cwd, "dx-batch.config.json"), {});
    const a = thrown(() => load({ flags: { config: "nope.json" } }));
    expect(a.code).toBe("config_not_found");
    expect(a.message).toContain(join(cwd, "nope.json"));
    expect(a.message).toContain("--config");
    expectOneLine(a);
    const b = thrown(() => load({ env: { PATH: emptyPath, DX_BATCH_CONFIG: join(dir, "missing.json") } }));
    expect(b.code).toBe("config_not_found");
    expect(b.message).toContain("missing.json");
    expect(b.message).toContain("$DX_BATCH_CONFIG");
    expectOneLine(b);
  });

  it("ignores an empty $DX_BATCH_CONFIG", () => {
    expect(load({ env: { PATH: emptyPath, DX_BATCH_CONFIG: "" } }).source).toBeNull();
  });

  it("refuses a config path that is a directory", () => {
    const e = thrown(() => load({ flags: { config: dir } }));
    expect(e.code).toBe("config_unreadable");
    expectOneLine(e);
  });
});

describe("precedence: flags over file over env over defaults", () => {
  it("applies each layer key by key", () => {
    const file = write(join(dir, "c.json"), { artifact_dir: "/file/artifacts", exec_process_cap: 40, stall_minutes: 7 });
    const env = {
      PATH: emptyPath,
      DX_BATCH_ARTIFACT_DIR: "/env/artifacts",
      DX_BATCH_EXEC_PROCESS_CAP: "30",
      DX_RUNNER_LOG_BASE: "/env/runner",
      DX_BATCH_WORKSPACE_ROOT: "/env/agents",
    };
    const flags = { config: file, exec_process_cap: 20, max_parallel: 9 };
    const { config } = load({ flags, env });
    expect(config.exec_process_cap).toBe(20); // flag beats file and env
    expect(config.max_parallel).toBe(9); // flag beats default
    expect(config.artifact_dir).toBe("/file/artifacts"); // file beats env
    expect(config.stall_minutes).toBe(7); // file beats default
    expect(config.runner_log_dir).toBe("/env/runner"); // env beats default
    expect(config.workspace_root).toBe("/env/agents");
    expect(config.max_attempts).toBe(3); // default

    expect(load({ flags: { config: file }, env }).config.exec_process_cap).toBe(40); // file beats env
    expect(load({ env }).config.exec_process_cap).toBe(30); // env beats default
  });

  it("drops flags that are undefined instead of letting them erase lower layers", () => {
    const file = write(join(dir, "c.json"), { max_parallel: 8 });
    expect(load({ flags: { config: file, max_parallel: undefined, repo: undefined } }).config.max_parallel).toBe(8);
  });

  it("lets a flag turn review off over the file", () => {
    const file = write(join(dir, "c.json"), { require_review: true });
    expect(load({ flags: { config: file, require_review: false } }).config.require_review).toBe(false);
  });
});

describe("relative paths", () => {
  it("resolves the file's relative paths against the file's directory", () => {
    const confDir = join(dir, "conf");
    mkdirSync(confDir);
    const file = write(join(confDir, "dx.json"), {
      artifact_dir: "art",
      runner_log_dir: "./logs",
      workspace_root: "../ws",
      allowed_prefixes: ["extra"],
      protected_paths: ["/abs/keep", "prot"],
      repo: "../repo",
      tracker: { type: "file", path: "issues.jsonl" },
      prompts: { implement: "p/impl.md", review: "p/rev.md" },
      runner: { type: "dx-runner", command: "./bin/dx-runner" },
      providers: {
        mine: { command: ["./agent.sh", "{prompt_file}", "./not-a-command"], preflight: ["bin/check", "--ok"] },
        named: { command: ["claude", "-p"] },
        placeholder: { command: ["{worktree}/run.sh"] },
      },
    });
    const { config } = load({ flags: { config: file } });
    expect(config).toMatchObject({
      artifact_dir: join(confDir, "art"),
      runner_log_dir: join(confDir, "logs"),
      workspace_root: join(dir, "ws"),
      allowed_prefixes: [join(confDir, "extra")],
      protected_paths: ["/abs/keep", join(confDir, "prot")],
      repo: join(dir, "repo"),
      tracker: { type: "file", path: join(confDir, "issues.jsonl") },
      prompts: { implement: join(confDir, "p/impl.md"), review: join(confDir, "p/rev.md") },
      runner: { type: "dx-runner", command: join(confDir, "bin/dx-runner") },
    });
    expect(config.providers).toEqual({
      mine: { command: [join(confDir, "agent.sh"), "{prompt_file}", "./not-a-command"], preflight: [join(confDir, "bin/check"), "--ok"] },
      named: { command: ["claude", "-p"] },
      placeholder: { command: ["{worktree}/run.sh"] },
    });
  });

  it("resolves relative flag and env paths against cwd", () => {
    const { config } = load({ flags: { repo: "src/repo", artifact_dir: "art" }, env: { PATH: emptyPath, DX_RUNNER_LOG_BASE: "logs" } });
    expect(config.repo).toBe(join(cwd, "src/repo"));
    expect(config.artifact_dir).toBe(join(cwd, "art"));
    expect(config.runner_log_dir).toBe(join(cwd, "logs"));
  });

  it("keeps the beads tracker's bare command name for PATH lookup", () => {
    const file = write(join(dir, "c.json"), { tracker: { type: "beads", command: "bd", close_on_approve: true } });
    expect(load({ flags: { config: file } }).config.tracker).toEqual({ type: "beads", command: "bd", close_on_approve: true });
  });
});

describe("refusals name the file and the key's JSON path", () => {
  const refuse = (value: unknown, name = "dx.json"): DxError => {
    const file = write(join(dir, name), value);
    const e = thrown(() => load({ flags: { config: file } }));
    expect(e.message.startsWith(`${file}: `)).toBe(true);
    expectOneLine(e);
    return e;
  };

  it("an unknown top-level key, listing the allowed ones", () => {
    const e = refuse({ max_paralel: 2 });
    expect(e.code).toBe("config_unknown_key");
    expect(e.message).toBe(`${join(dir, "dx.json")}: /max_paralel: unknown key`);
    expect(e.remedy).toContain("max_parallel");
  });

  it("an unknown key inside a provider", () => {
    const e = refuse({ providers: { foo: { comand: ["x"] } } });
    expect(e.code).toBe("config_unknown_key");
    expect(e.message).toBe(`${join(dir, "dx.json")}: /providers/foo/comand: unknown key`);
    expect(e.remedy).toBe("remove or rename it; allowed here: command, stdin, env, pass_env, public_env, preflight, model, max_parallel");
  });

  it("unknown keys in runner, tracker and prompts", () => {
    expect(refuse({ runner: { type: "builtin", command: "x" } }).message).toContain(": /runner/command: unknown key");
    expect(refuse({ tracker: { type: "none", path: "x" } }).message).toContain(": /tracker/path: unknown key");
    expect(refuse({ prompts: { implemnt: "x" } }).message).toContain(": /prompts/implemnt: unknown key");
    const ok = write(join(dir, "ok.json"), { runner: { type: "builtin" }, tracker: { type: "none" }, prompts: {} });
    expect(load({ flags: { config: ok } }).config).toMatchObject({ runner: { type: "builtin" }, tracker: { type: "none" }, prompts: {} });
  });

  it("a wrong type", () => {
    const e = refuse({ max_parallel: "3" });
    expect(e.code).toBe("config_invalid");
    expect(e.message).toBe(`${join(dir, "dx.json")}: /max_parallel: must be integer, got string`);
    expect(e.remedy).toContain("items in flight at once");
    expect(refuse({ max_parallel: 2.5 }).message).toContain("/max_parallel: must be integer, got number");
    expect(refuse({ require_review: "yes" }).message).toContain("/require_review: must be boolean, got string");
    expect(refuse({ providers: { foo: { env: { TOKEN: 1 } } } }).message).toContain("/providers/foo/env/TOKEN: must be string, got integer");
    expect(refuse({ providers: { foo: { stdin: "file" } } }).message).toContain('/providers/foo/stdin: "file" is not one of "prompt", "none"');
    expect(refuse({ repo: 3 }).message).toContain("/repo: must be string or null, got integer");
  });

  it("counts below their minimum, and durations that are not positive", () => {
    for (const key of ["max_parallel", "max_attempts", "exec_process_cap", "max_log_mb"]) {
      const e = refuse({ [key]: 0 });
      expect(e.code).toBe("config_invalid");
      expect(e.message).toContain(`/${key}: must be >= 1`);
    }
    // Minutes may be fractional (0.5 = 30 s) but must be above zero.
    for (const key of ["stall_minutes", "lease_ttl_minutes", "max_runtime_minutes"]) {
      const e = refuse({ [key]: 0 });
      expect(e.code).toBe("config_invalid");
      expect(e.message).toContain(`/${key}: must be > 0`);
    }
    expect(refuse({ providers: { foo: { max_parallel: 0 } } }).message).toContain("/providers/foo/max_parallel: must be >= 1");
    expect(refuse({ provider_cooldown_minutes: -1 }).message).toContain("/provider_cooldown_minutes: must be >= 0");
  });

  it("an unknown runner or tracker type, and a missing required key of a variant", () => {
    expect(refuse({ runner: { type: "docker" } }).message).toContain('/runner/type: "docker" is not one of "builtin", "dx-runner"');
    expect(refuse({ runner: { type: "dx-runner" } }).message).toContain("/runner/command: required key is missing");
    expect(refuse({ tracker: { type: "file" } }).message).toContain("/tracker/path: required key is missing");
    expect(refuse({ tracker: {} }).message).toContain('/tracker/type: required key is missing (one of "beads", "file", "none")');
  });

  it("the reserved `blocked` entry used as a provider, and chains with no provider", () => {
    expect(refuse({ providers: { blocked: { command: ["x"] } } }).message).toContain('/providers/blocked: "blocked" is reserved');
    expect(refuse({ review_provider: "blocked" }).message).toContain('/review_provider: "blocked" is not a provider');
    expect(refuse({ retry_chain: [] }).message).toContain("/retry_chain: must NOT have fewer than 1 items");
    expect(refuse({ retry_chain: ["blocked"] }).message).toContain("/retry_chain: needs at least one provider");
    expect(refuse({ retry_chain: ["opencode", "blocked", "codex"] }).message).toContain("/retry_chain/2: unreachable");
  });

  it("names that could escape a directory or break an environment", () => {
    expect(refuse({ providers: { "../x": { command: ["x"] } } }).message).toContain('/providers: key "../x" is not a valid name');
    expect(refuse({ providers: { foo: { env: { "A=B": "x" } } } }).message).toContain('/providers/foo/env: key "A=B" is not a valid name');
    expect(refuse({ retry_chain: ["a/b", "blocked"] }).message).toContain("/retry_chain/0: ");
    expect(refuse({ base: "--upload-pack=x" }).message).toContain("/base: ");
    expect(refuse({ providers: { foo: { command: [] } } }).message).toContain("/providers/foo/command: must NOT have fewer than 1 items");
  });

  it("a file that is not JSON, with the position", () => {
    const e = refuse('{\n  "max_parallel": 3,\n}\n');
    expect(e.code).toBe("config_not_json");
    expect(e.message).toMatch(/: not JSON: .*\(line 3, column 1\)$/);
    expect(e.remedy).toBe("fix the JSON syntax at line 3, column 1");
    expect(refuse("").code).toBe("config_not_json");
    expect(refuse("[]").message).toContain(": /: must be object, got array");
  });

  it("a flag of the wrong type, naming the flag", () => {
    const e = thrown(() => load({ flags: { max_parallel: 0 } }));
    expect(e.code).toBe("config_invalid");
    expect(e.message).toBe("command line: /max_parallel (--max-parallel): must be >= 1");
    expect(thrown(() => load({ flags: { bogus: 1 } })).code).toBe("config_unknown_key");
  });

  it("an exec process cap in the environment that is not an integer, naming the variable", () => {
    for (const bad of ["abc", "1.5", "-3", "0", "12abc"]) {
      const e = thrown(() => load({ env: { PATH: emptyPath, DX_BATCH_EXEC_PROCESS_CAP: bad } }));
      expect(e.code).toBe("config_invalid");
      expect(e.message).toContain("DX_BATCH_EXEC_PROCESS_CAP");
      expect(e.message).toContain(JSON.stringify(bad));
      expectOneLine(e);
    }
  });

  it("accepts and drops a $schema key", () => {
    const file = write(join(dir, "c.json"), { $schema: "./node_modules/dx-batch/schemas/config.schema.json", max_parallel: 4 });
    const { config } = load({ flags: { config: file } });
    expect(config.max_parallel).toBe(4);
    expect(config).not.toHaveProperty("$schema");
  });
});

describe("loading writes nothing", () => {
  const tree = (root: string): string[] =>
    readdirSync(root, { recursive: true, encoding: "utf8" })
      .map((p) => `${p}:${statSync(join(root, p)).mtimeMs}`)
      .sort();

  it("leaves the config directory, cwd and every configured directory untouched", () => {
    const file = write(join(cwd, "dx-batch.config.json"), {
      artifact_dir: join(dir, "art"),
      runner_log_dir: join(dir, "logs"),
      workspace_root: join(dir, "ws"),
      tracker: { type: "file", path: join(dir, "issues.jsonl") },
    });
    const before = tree(dir);
    const { config, source } = load({ env: { PATH: emptyPath, DX_BATCH_ARTIFACT_DIR: join(dir, "env-art") } });
    expect(source).toBe(file);
    expect(config.artifact_dir).toBe(join(dir, "art"));
    expect(tree(dir)).toEqual(before);
    for (const p of ["art", "logs", "ws", "issues.jsonl", "env-art"]) expect(() => statSync(join(dir, p))).toThrow();
  });
});
