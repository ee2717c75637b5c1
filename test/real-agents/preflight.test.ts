import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProviderConfig } from "../../src/config/types.js";
import { createBuiltinRunner } from "../../src/runner/builtin.js";
import { createProviderRegistry } from "../../src/runner/providers/index.js";
import { agentSandbox, runCliDirect, type AgentSandbox, INSTALL_TIMEOUT_MS } from "./harness.js";

// Preflight agrees with the real CLIs: each CLI's working auth setups pass, its broken ones fail
// with a reason that names the fix, and for the setups the issue reported wrong, the CLI itself is
// run to show the verdict is the CLI's own.

async function preflight(sb: AgentSandbox, provider: string, env: Record<string, string | undefined>, providers: Record<string, ProviderConfig> = {}) {
  const e: NodeJS.ProcessEnv = { ...sb.env };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete e[k];
    else e[k] = v;
  }
  const runner = createBuiltinRunner({
    log_dir: path.join(sb.root, "runner"),
    providers,
    workspace: { workspace_root: path.join(sb.root, "agents"), allowed_prefixes: [], protected_paths: [] },
    max_log_mb: 1,
    env: e,
  });
  return runner.preflight(provider);
}

describe("codex preflight", () => {
  let sb: AgentSandbox;
  beforeAll(async () => {
    sb = await agentSandbox("codex", () => ({ kind: "text", text: "ok" }));
  }, INSTALL_TIMEOUT_MS);
  afterAll(async () => sb.close());

  it("passes a config.toml custom provider whose env_key is set, though `codex login status` fails", async () => {
    expect(await preflight(sb, "codex", {})).toMatchObject({ ok: true });
    const login = await runCliDirect(sb, ["codex", "login", "status"], { timeoutMs: 30_000 });
    expect(login.code).not.toBe(0);
  }, 60_000);

  it("fails codex_auth_missing naming the env_key when it is unset, and the CLI agrees", async () => {
    const r = await preflight(sb, "codex", { MOCK_API_KEY: undefined });
    expect(r).toMatchObject({ ok: false, reason_code: "codex_auth_missing" });
    expect(r.detail).toMatch(/env_key MOCK_API_KEY is not set/);
    const run = await runCliDirect(sb, ["codex", "exec", "--json", "-m", "gpt-5.5", "-s", "read-only", "-"], {
      input: "hi",
      env: { MOCK_API_KEY: "" },
      timeoutMs: 60_000,
    });
    expect(run.code).not.toBe(0);
    expect(`${run.stdout}${run.stderr}`).toMatch(/MOCK_API_KEY/);
  }, 90_000);

  it("without a custom provider: CODEX_API_KEY, or `codex login --with-api-key` state, passes; nothing fails", async () => {
    const home = path.join(sb.root, "home-plain");
    mkdirSync(home, { recursive: true });
    expect(await preflight(sb, "codex", { HOME: home })).toMatchObject({ ok: false, reason_code: "codex_auth_missing" });
    expect(await preflight(sb, "codex", { HOME: home, CODEX_API_KEY: "k" })).toMatchObject({ ok: true });
    const login = await runCliDirect(sb, ["codex", "login", "--with-api-key"], { input: "sk-test-key\n", env: { HOME: home }, timeoutMs: 30_000 });
    expect(login.code, login.stderr).toBe(0);
    expect(await preflight(sb, "codex", { HOME: home })).toMatchObject({ ok: true });
  }, 90_000);

  it("a model_provider with no table is a config error, named", async () => {
    writeFileSync(path.join(sb.home, ".codex", "config.toml"), 'model_provider = "ghost"\n');
    const r = await preflight(sb, "codex", {});
    expect(r).toMatchObject({ ok: false, reason_code: "codex_config_invalid" });
  }, 60_000);
});

describe("opencode preflight", () => {
  let sb: AgentSandbox;
  beforeAll(async () => {
    sb = await agentSandbox("opencode", () => ({ kind: "text", text: "ok" }));
  }, INSTALL_TIMEOUT_MS);
  afterAll(async () => sb.close());
  const cfgFile = (): string => path.join(sb.home, ".config", "opencode", "opencode.json");
  const writeCfg = (apiKey: unknown): void => {
    const options: Record<string, unknown> = { baseURL: `${sb.mock.url}/v1` };
    if (apiKey !== undefined) options.apiKey = apiKey;
    writeFileSync(
      cfgFile(),
      JSON.stringify({
        provider: { mock: { npm: "@ai-sdk/openai-compatible", options, env: ["MOCK_CHAT_KEY"], models: { "mock-model": { tool_call: true } } } },
      }),
    );
  };
  const model = { opencode: { model: "mock/mock-model" } };

  it("passes a key in opencode.json options.apiKey (literal or {env:…} that is set)", async () => {
    writeCfg("literal-key");
    expect(await preflight(sb, "opencode", {}, model)).toMatchObject({ ok: true });
    writeCfg("{env:MY_MOCK_KEY}");
    expect(await preflight(sb, "opencode", { MY_MOCK_KEY: "k" }, model)).toMatchObject({ ok: true });
  }, 60_000);

  it("passes a key in auth.json (opencode auth login) or in the provider's env", async () => {
    writeCfg("{env:UNSET_KEY}");
    expect(await preflight(sb, "opencode", { MOCK_CHAT_KEY: "k" }, model)).toMatchObject({ ok: true });
    const data = path.join(sb.home, ".local", "share", "opencode");
    mkdirSync(data, { recursive: true });
    writeFileSync(path.join(data, "auth.json"), JSON.stringify({ mock: { type: "api", key: "k" } }));
    expect(await preflight(sb, "opencode", {}, model)).toMatchObject({ ok: true });
    rmSync(path.join(data, "auth.json"));
  }, 60_000);

  it("fails opencode_auth_missing when the model's provider has no key anywhere, naming the places", async () => {
    writeCfg("{env:UNSET_KEY}");
    const r = await preflight(sb, "opencode", { OPENROUTER_API_KEY: "a key for another provider" }, model);
    expect(r).toMatchObject({ ok: false, reason_code: "opencode_auth_missing" });
    expect(r.detail).toMatch(/provider "mock".*opencode auth login.*options\.apiKey.*MOCK_CHAT_KEY/);
  }, 60_000);
});

describe("gemini preflight", () => {
  let sb: AgentSandbox;
  beforeAll(async () => {
    sb = await agentSandbox("gemini", () => ({ kind: "text", text: "ok" }));
  }, INSTALL_TIMEOUT_MS);
  afterAll(async () => sb.close());
  const settings = (): string => path.join(sb.home, ".gemini", "settings.json");

  it("passes GEMINI_API_KEY with selectedType gemini-api-key (what the mock runs use)", async () => {
    expect(await preflight(sb, "gemini", {})).toMatchObject({ ok: true });
  }, 60_000);

  it("refuses gemini_auth_type_unset with GOOGLE_GEMINI_BASE_URL and no selectedType, and the CLI exits 41", async () => {
    writeFileSync(settings(), "{}");
    const r = await preflight(sb, "gemini", {});
    expect(r).toMatchObject({ ok: false, reason_code: "gemini_auth_type_unset" });
    expect(r.detail).toMatch(/selectedType.*gemini-api-key/);
    const run = await runCliDirect(sb, ["gemini", "-p", "", "-m", "gemini-2.5-pro", "-o", "stream-json", "--approval-mode", "yolo", "--skip-trust"], {
      input: "hi",
      timeoutMs: 120_000,
    });
    expect(run.code).toBe(41);
    expect(`${run.stdout}${run.stderr}`).toMatch(/Invalid auth method selected/);
  }, 180_000);

  it("passes GEMINI_API_KEY alone without a base URL; fails a selected gemini-api-key without the key, and oauth without cached credentials", async () => {
    writeFileSync(settings(), "{}");
    expect(await preflight(sb, "gemini", { GOOGLE_GEMINI_BASE_URL: undefined })).toMatchObject({ ok: true });
    writeFileSync(settings(), JSON.stringify({ security: { auth: { selectedType: "gemini-api-key" } } }));
    expect(await preflight(sb, "gemini", { GEMINI_API_KEY: undefined })).toMatchObject({ ok: false, reason_code: "gemini_auth_missing" });
    writeFileSync(settings(), JSON.stringify({ security: { auth: { selectedType: "oauth-personal" } } }));
    const r = await preflight(sb, "gemini", {});
    expect(r).toMatchObject({ ok: false, reason_code: "gemini_auth_missing" });
    expect(r.detail).toMatch(/oauth_creds\.json/);
  }, 90_000);
});

describe("claude-code preflight", () => {
  let sb: AgentSandbox;
  beforeAll(async () => {
    sb = await agentSandbox("claude", () => ({ kind: "text", text: "ok" }));
  }, INSTALL_TIMEOUT_MS);
  afterAll(async () => sb.close());

  it("passes with ANTHROPIC_API_KEY; without any key, `claude auth status` decides (not logged in: fails)", async () => {
    expect(await preflight(sb, "claude-code", {})).toMatchObject({ ok: true });
    const r = await preflight(sb, "claude-code", { ANTHROPIC_API_KEY: undefined });
    expect(r).toMatchObject({ ok: false, reason_code: "claude-code_auth_missing" });
    const status = await runCliDirect(sb, ["claude", "auth", "status"], { env: { ANTHROPIC_API_KEY: "" }, timeoutMs: 30_000 });
    expect(status.code).not.toBe(0);
  }, 90_000);

  it("passes without any key when `claude auth status` reports loggedIn (a claude.ai login in HOME), and the CLI agrees", async () => {
    // The login a `claude /login` leaves: OAuth tokens in ~/.claude/.credentials.json. The CLI
    // reads it without the network; these tokens are never sent anywhere by this test.
    const home = path.join(sb.root, "logged-in-home");
    mkdirSync(path.join(home, ".claude"), { recursive: true });
    const oauth = { accessToken: "sk-ant-oat01-test", refreshToken: "sk-ant-ort01-test", expiresAt: 4_102_444_800_000, scopes: ["user:inference"] };
    writeFileSync(path.join(home, ".claude", ".credentials.json"), JSON.stringify({ claudeAiOauth: oauth }), { mode: 0o600 });
    expect(await preflight(sb, "claude-code", { ANTHROPIC_API_KEY: undefined, HOME: home })).toMatchObject({ ok: true });
    const status = await runCliDirect(sb, ["claude", "auth", "status"], { env: { ANTHROPIC_API_KEY: "", HOME: home }, timeoutMs: 30_000 });
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ loggedIn: true });
  }, 90_000);

  it("cc-glm passes with a token and fails without; a config env's ANTHROPIC_BASE_URL wins over the Z.ai default", async () => {
    expect(await preflight(sb, "cc-glm", { CC_GLM_AUTH_TOKEN: "t" })).toMatchObject({ ok: true });
    expect(await preflight(sb, "cc-glm", {})).toMatchObject({ ok: false, reason_code: "cc-glm_auth_missing" });
    const glm = createProviderRegistry({ "cc-glm": { env: { ANTHROPIC_BASE_URL: sb.mock.url, API_TIMEOUT_MS: "60000" } } }).get("cc-glm");
    const plan = await glm?.plan({
      job_id: "x-1",
      item_id: "x-1",
      wave_id: "w",
      phase: "implement",
      attempt: 1,
      run_instance: "r",
      worktree: sb.repo,
      prompt_file: "/dev/null",
      contract_file: path.join(sb.repo, ".dx-batch", "implement.attempt1.contract.json"),
      model: null,
      env: { CC_GLM_AUTH_TOKEN: "t" },
    });
    expect(plan?.env).toMatchObject({ ANTHROPIC_BASE_URL: sb.mock.url, API_TIMEOUT_MS: "60000", ANTHROPIC_AUTH_TOKEN: "t" });
    expect(plan?.argv).toContain("--allowedTools");
    expect(plan?.argv).not.toContain("--add-dir");
  }, 60_000);
});
