import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { REPO } from "../helpers/build.js";
import { anthropicAdapter } from "../fixtures/mock-models/anthropic.js";
import { geminiAdapter } from "../fixtures/mock-models/gemini.js";
import { chatAdapter } from "../fixtures/mock-models/openai-chat.js";
import { responsesAdapter } from "../fixtures/mock-models/openai-responses.js";
import type { MockScript, MockUsage } from "../fixtures/mock-models/script.js";
import { startMockServer, type Adapter, type MockServer } from "../fixtures/mock-models/server.js";

// The real-agent tier: the pinned CLIs (scripts/install-agent-clis.mjs) against the mock model
// servers, each test in its own temp root with its own HOME, the CLI pointed at its mock through
// its documented base-URL setting (REFERENCE §6), telemetry off. Nothing here reaches a network
// beyond 127.0.0.1.

export type CliName = "claude" | "codex" | "opencode" | "gemini";

/** The first test of a tier may install the CLIs (about a minute; more on a slow registry). */
export const INSTALL_TIMEOUT_MS = 20 * 60_000;

/** The dx-batch built-in provider that runs each CLI. */
export const PROVIDER: Record<CliName, string> = { claude: "claude-code", codex: "codex", opencode: "opencode", gemini: "gemini" };

/** A model each CLI knows, so it takes its normal code path (Codex picks tools by model family). */
export const MODEL: Record<CliName, string> = { claude: "sonnet", codex: "gpt-5.5", opencode: "mock/mock-model", gemini: "gemini-2.5-pro" };

const ADAPTER: Record<CliName, (u: MockUsage) => Adapter> = { claude: anthropicAdapter, codex: responsesAdapter, opencode: chatAdapter, gemini: geminiAdapter };

let binDirMemo: string | null = null;

/**
 * The pinned CLIs' bin directory, installing them on first use. Installation failing throws: the
 * tier fails loudly, it never skips. Concurrent test files serialise on a lock directory.
 */
export function agentCliBinDir(): string {
  if (binDirMemo !== null) return binDirMemo;
  const cache = path.join(REPO, ".cache");
  mkdirSync(cache, { recursive: true });
  const lock = path.join(cache, "agent-clis.install-lock");
  const deadline = Date.now() + 20 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`agent CLI install lock ${lock} held for 20 min; remove it if no install is running`);
      execFileSync("sleep", ["1"]);
    }
  }
  try {
    const out = execFileSync(process.execPath, [path.join(REPO, "scripts", "install-agent-clis.mjs"), "--print-bin-dir"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      timeout: 20 * 60_000,
    });
    binDirMemo = out.trim().split("\n").at(-1) ?? "";
    if (binDirMemo === "") throw new Error("install-agent-clis printed no bin dir");
    return binDirMemo;
  } catch (e) {
    throw new Error(`the real agent CLIs could not be installed (npm registry reachable?): ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export interface AgentSandbox {
  cli: CliName;
  provider: string;
  root: string;
  home: string;
  repo: string;
  mock: MockServer;
  /** The environment dx-batch (and so every agent) runs with. */
  env: Record<string, string>;
  configPath: string;
  config: Record<string, unknown>;
  writeConfig(extra: Record<string, unknown>): void;
  close(): Promise<void>;
}

export const git = (cwd: string, ...args: string[]): string => execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

function baseEnv(home: string, bin: string): Record<string, string> {
  const keep = ["LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL", "TERM"];
  const env: Record<string, string> = {};
  for (const k of keep) if (process.env[k] !== undefined) env[k] = process.env[k] ?? "";
  return {
    ...env,
    HOME: home,
    PATH: `${bin}:${path.dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
    GIT_AUTHOR_NAME: "Agent",
    GIT_AUTHOR_EMAIL: "agent@example.invalid",
    GIT_COMMITTER_NAME: "Agent",
    GIT_COMMITTER_EMAIL: "agent@example.invalid",
    GIT_CONFIG_NOSYSTEM: "1",
    NO_COLOR: "1",
  };
}

/** Each CLI's own settings in HOME, and the env pointing it at the mock (REFERENCE §6). */
function configureCli(cli: CliName, home: string, mockUrl: string): Record<string, string> {
  switch (cli) {
    case "claude":
      return {
        ANTHROPIC_BASE_URL: mockUrl,
        ANTHROPIC_API_KEY: "mock-anthropic-key",
        DISABLE_TELEMETRY: "1",
        DISABLE_ERROR_REPORTING: "1",
        DISABLE_AUTOUPDATER: "1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
      };
    case "codex": {
      mkdirSync(path.join(home, ".codex"), { recursive: true });
      writeFileSync(
        path.join(home, ".codex", "config.toml"),
        [
          'model_provider = "mock"',
          "check_for_update_on_startup = false",
          "[analytics]",
          "enabled = false",
          "[model_providers.mock]",
          'name = "mock"',
          `base_url = "${mockUrl}/v1"`,
          'env_key = "MOCK_API_KEY"',
          'wire_api = "responses"',
          "",
        ].join("\n"),
      );
      return { MOCK_API_KEY: "mock-openai-key" };
    }
    case "opencode": {
      const cfgDir = path.join(home, ".config", "opencode");
      mkdirSync(cfgDir, { recursive: true });
      writeFileSync(
        path.join(cfgDir, "opencode.json"),
        JSON.stringify({
          $schema: "https://opencode.ai/config.json",
          autoupdate: false,
          share: "disabled",
          provider: {
            mock: {
              npm: "@ai-sdk/openai-compatible",
              name: "Mock",
              options: { baseURL: `${mockUrl}/v1`, apiKey: "mock-chat-key" },
              models: { "mock-model": { name: "Mock", tool_call: true } },
            },
          },
        }),
      );
      return { OPENCODE_DISABLE_AUTOUPDATE: "1", OPENCODE_DISABLE_MODELS_FETCH: "1", OPENCODE_DISABLE_SHARE: "1" };
    }
    case "gemini": {
      mkdirSync(path.join(home, ".gemini"), { recursive: true });
      writeFileSync(
        path.join(home, ".gemini", "settings.json"),
        JSON.stringify({
          security: { auth: { selectedType: "gemini-api-key" } },
          privacy: { usageStatisticsEnabled: false },
          telemetry: { enabled: false },
          general: { disableAutoUpdate: true },
        }),
      );
      return { GOOGLE_GEMINI_BASE_URL: mockUrl, GEMINI_API_KEY: "mock-gemini-key", GEMINI_TELEMETRY_ENABLED: "false" };
    }
  }
}

export interface SandboxOptions {
  usage?: MockUsage;
  delay_ms?: number;
  /** Extra dx-batch config keys. */
  config?: Record<string, unknown>;
}

/** A temp root: HOME, a git repo with one commit, a running mock, a dx-batch config using the CLI's built-in provider. */
export async function agentSandbox(cli: CliName, script: MockScript, o: SandboxOptions = {}): Promise<AgentSandbox> {
  const bin = agentCliBinDir();
  const root = mkdtempSync(path.join(os.tmpdir(), `dx-real-${cli}-`));
  const home = path.join(root, "home");
  const repo = path.join(root, "repo");
  mkdirSync(home, { mode: 0o700 });
  mkdirSync(repo);
  git(repo, "init", "-q", "-b", "main");
  writeFileSync(path.join(repo, "README.md"), "# demo\n");
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "--allow-empty", "-m", "init"], { cwd: repo });
  git(repo, "add", "README.md");
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "readme"], { cwd: repo });
  const mock = await startMockServer(ADAPTER[cli], script, {
    ...(o.usage !== undefined ? { usage: o.usage } : {}),
    ...(o.delay_ms !== undefined ? { delay_ms: o.delay_ms } : {}),
  });
  const env = { ...baseEnv(home, bin), ...configureCli(cli, home, mock.url), DX_BATCH_HOME: path.join(root, "dx-home") };
  // OpenCode creates its SQLite store on its first run in a HOME, and two first runs at once race
  // ("Failed query: CREATE TABLE `workspace`"): a user's OpenCode home is set up once, so this one
  // is too, before the wave starts two agents together.
  if (cli === "opencode") execFileSync(path.join(bin, "opencode"), ["session", "list"], { env, stdio: "ignore", timeout: 60_000 });
  const provider = PROVIDER[cli];
  const configPath = path.join(root, "dx-batch.config.json");
  let config: Record<string, unknown> = {};
  const writeConfig = (extra: Record<string, unknown>): void => {
    config = {
      repo,
      base: "main",
      artifact_dir: path.join(root, "art"),
      runner_log_dir: path.join(root, "runner"),
      workspace_root: path.join(root, "agents"),
      tracker: { type: "none" },
      retry_chain: [provider, "blocked"],
      review_provider: provider,
      stall_minutes: 3,
      max_runtime_minutes: 4,
      providers: { [provider]: { model: MODEL[cli] } },
      ...extra,
    };
    writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
  };
  writeConfig(o.config ?? {});
  return {
    cli,
    provider,
    root,
    home,
    repo,
    mock,
    env,
    configPath,
    get config() {
      return config;
    },
    writeConfig,
    async close() {
      await mock.close();
      if (process.env.DX_KEEP_REAL_AGENT_DIRS !== "1") rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** `node bin/dx-batch.js <args>` as a user runs it, in the sandbox's environment. */
export async function dxBatch(sb: AgentSandbox, args: string[], timeoutMs = 240_000): Promise<CliRun> {
  const t0 = performance.now();
  const r = await execa(process.execPath, [path.join(REPO, "bin", "dx-batch.js"), ...args, "--config", sb.configPath], {
    cwd: sb.root,
    env: sb.env,
    extendEnv: false,
    reject: false,
    stdin: "ignore",
    timeout: timeoutMs,
    killSignal: "SIGKILL",
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), ms: Math.round(performance.now() - t0) };
}

/** Run a CLI directly (not through dx-batch), e.g. to capture its stream for the parser tables. */
export async function runCliDirect(
  sb: AgentSandbox,
  argv: string[],
  o: { cwd?: string; input?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CliRun> {
  const t0 = performance.now();
  const [file, ...args] = argv;
  const r = await execa(path.join(agentCliBinDir(), file ?? ""), args, {
    cwd: o.cwd ?? sb.repo,
    env: { ...sb.env, ...o.env },
    extendEnv: false,
    reject: false,
    input: o.input ?? "",
    timeout: o.timeoutMs ?? 180_000,
    killSignal: "SIGKILL",
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), ms: Math.round(performance.now() - t0) };
}

export interface WaveItem {
  beads_id: string;
  status: string;
  reason_code: string | null;
  attempt: number;
}

export async function waveStatus(sb: AgentSandbox, wave: string): Promise<{ status: string; items: WaveItem[] } & Record<string, unknown>> {
  const r = await dxBatch(sb, ["status", "--wave-id", wave, "--json"], 60_000);
  return JSON.parse(r.stdout) as { status: string; items: WaveItem[] } & Record<string, unknown>;
}

export async function waveReport(sb: AgentSandbox, wave: string): Promise<Record<string, unknown>> {
  const r = await dxBatch(sb, ["report", "--wave-id", wave, "--format", "json"], 60_000);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** The item's branch: commits above the base and the files they touch. */
export function branchLog(sb: AgentSandbox, item: string): { subjects: string[]; bodies: string; files: string[] } {
  const subjects = git(sb.repo, "log", "--format=%s", `main..dx/${item}`).split("\n").filter(Boolean);
  const bodies = git(sb.repo, "log", "--format=%B", `main..dx/${item}`);
  const files = git(sb.repo, "diff", "--name-only", `main...dx/${item}`).split("\n").filter(Boolean);
  return { subjects, bodies, files };
}

/** Every runner log of the wave, concatenated (for failure messages and stream captures). */
export function runnerLogs(sb: AgentSandbox): string {
  try {
    const dir = path.join(sb.root, "runner", sb.provider);
    return execFileSync("sh", ["-c", 'for f in "$1"/*.log*; do echo "=== $f"; tail -c 4000 "$f"; done', "sh", dir], { encoding: "utf8" });
  } catch {
    return "(no runner logs)";
  }
}

export const readText = (p: string): string => readFileSync(p, "utf8");
