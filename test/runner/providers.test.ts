import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createBuiltinRunner } from "../../src/runner/builtin.js";
import { resolveGlmToken } from "../../src/runner/providers/cc-glm.js";
import { fillPlaceholders } from "../../src/runner/providers/command.js";
import { createProviderRegistry, type LaunchContext } from "../../src/runner/providers/index.js";
import type { ProviderConfig } from "../../src/config/types.js";
import { cleanup, FIXTURES, tempDir } from "./helpers/env.js";

afterEach(cleanup);

/** Only the fixture directory on PATH and an empty HOME: nothing of the host leaks in. */
function isolatedEnv(extra: Record<string, string> = {}, pathDir = FIXTURES): NodeJS.ProcessEnv {
  return { PATH: pathDir, HOME: tempDir("dx-home-"), ...extra };
}

async function preflight(provider: string, env: NodeJS.ProcessEnv, providers: Record<string, ProviderConfig> = {}) {
  const runner = createBuiltinRunner({
    log_dir: tempDir(),
    providers,
    workspace: { workspace_root: "/nonexistent", allowed_prefixes: [], protected_paths: [] },
    max_log_mb: 1,
    env,
    preflight_timeout_ms: 10_000,
  });
  return runner.preflight(provider);
}

const BUILTINS = ["claude-code", "cc-glm", "opencode", "codex", "gemini"];

describe("offline preflight of the built-in providers", () => {
  it("fails with <provider>_binary_missing when the CLI is not on PATH", async () => {
    const empty = tempDir("dx-empty-path-");
    for (const p of BUILTINS) {
      const r = await preflight(p, isolatedEnv({}, empty));
      expect(r, p).toMatchObject({ provider: p, ok: false, reason_code: `${p}_binary_missing` });
    }
  });

  it("fails with <provider>_version_failed when --version does not exit 0", async () => {
    for (const p of BUILTINS) {
      const r = await preflight(p, isolatedEnv({ FAKE_VERSION_FAIL: "1", ANTHROPIC_API_KEY: "k", CC_GLM_AUTH_TOKEN: "t" }));
      expect(r, p).toMatchObject({ ok: false, reason_code: `${p}_version_failed` });
    }
  });

  it("fails with <provider>_auth_missing without any auth signal", async () => {
    for (const p of BUILTINS) {
      const r = await preflight(p, isolatedEnv());
      expect(r, p).toMatchObject({ ok: false, reason_code: `${p}_auth_missing` });
      expect(r.detail, p).toBeTruthy();
    }
  });

  it("passes with an auth signal, for every kind of signal REFERENCE §3 names", async () => {
    const ok = async (p: string, env: NodeJS.ProcessEnv, note: string, providers: Record<string, ProviderConfig> = {}) =>
      expect(await preflight(p, env, providers), `${p} via ${note}`).toMatchObject({ ok: true, reason_code: null });
    await ok("claude-code", isolatedEnv({ ANTHROPIC_API_KEY: "sk-test" }), "ANTHROPIC_API_KEY");
    await ok("claude-code", isolatedEnv({ CLAUDE_CODE_OAUTH_TOKEN: "tok" }), "CLAUDE_CODE_OAUTH_TOKEN");
    await ok("claude-code", isolatedEnv({ FAKE_CLAUDE_LOGGED_IN: "1" }), "claude auth status");
    await ok("cc-glm", isolatedEnv({ CC_GLM_AUTH_TOKEN: "t" }), "CC_GLM_AUTH_TOKEN");
    await ok("cc-glm", isolatedEnv({ ZAI_API_KEY: "z" }), "ZAI_API_KEY");
    const tokenFile = path.join(tempDir(), "glm.token");
    writeFileSync(tokenFile, "from-file\n");
    await ok("cc-glm", isolatedEnv({ CC_GLM_TOKEN_FILE: tokenFile }), "CC_GLM_TOKEN_FILE");
    await ok("opencode", isolatedEnv({ ZAI_API_KEY: "k" }), "the default model's provider key");
    await ok("opencode", isolatedEnv({ OPENROUTER_API_KEY: "k" }), "a provider key", { opencode: { model: "openrouter/some-model" } });
    const home = tempDir("dx-home-");
    mkdirSync(path.join(home, ".local", "share", "opencode"), { recursive: true });
    writeFileSync(path.join(home, ".local", "share", "opencode", "auth.json"), '{"zai-coding-plan":{"type":"api","key":"k"}}');
    await ok("opencode", { PATH: FIXTURES, HOME: home }, "auth.json");
    await ok("codex", isolatedEnv({ CODEX_API_KEY: "k" }), "CODEX_API_KEY");
    await ok("codex", isolatedEnv({ FAKE_CODEX_LOGGED_IN: "1" }), "codex login status");
    await ok("gemini", isolatedEnv({ GEMINI_API_KEY: "k" }), "GEMINI_API_KEY");
    await ok("gemini", isolatedEnv({ GOOGLE_GENAI_USE_VERTEXAI: "true" }), "GOOGLE_GENAI_USE_VERTEXAI");
    const ghome = tempDir("dx-home-");
    mkdirSync(path.join(ghome, ".gemini"));
    writeFileSync(path.join(ghome, ".gemini", "settings.json"), '{"security":{"auth":{"selectedType":"oauth-personal"}}}');
    writeFileSync(path.join(ghome, ".gemini", "oauth_creds.json"), "{}");
    await ok("gemini", { PATH: FIXTURES, HOME: ghome }, "~/.gemini/settings.json with cached oauth credentials");
  });

  it("an unknown provider is unknown_provider", async () => {
    expect(await preflight("nope", isolatedEnv())).toMatchObject({ ok: false, reason_code: "unknown_provider" });
  });
});

describe("cc-glm token resolution", () => {
  it("CC_GLM_AUTH_TOKEN, else the CC_GLM_TOKEN_FILE file, else ZAI_API_KEY", () => {
    const f = path.join(tempDir(), "t");
    writeFileSync(f, "  file-token \n");
    expect(resolveGlmToken({ CC_GLM_AUTH_TOKEN: "a", CC_GLM_TOKEN_FILE: f, ZAI_API_KEY: "z" })).toEqual({ token: "a", source: "CC_GLM_AUTH_TOKEN" });
    expect(resolveGlmToken({ CC_GLM_TOKEN_FILE: f, ZAI_API_KEY: "z" })).toEqual({ token: "file-token", source: "CC_GLM_TOKEN_FILE" });
    expect(resolveGlmToken({ CC_GLM_TOKEN_FILE: path.join(f, "missing"), ZAI_API_KEY: "z" })).toEqual({ token: "z", source: "ZAI_API_KEY" });
    expect(resolveGlmToken({})).toBeNull();
  });
});

describe("command providers from config", () => {
  const ctx = (over: Partial<LaunchContext> = {}): LaunchContext => ({
    job_id: "bd-1-review",
    item_id: "bd-1",
    wave_id: "w",
    phase: "review",
    attempt: 2,
    run_instance: "ri",
    worktree: "/w/t",
    prompt_file: "/p/prompt",
    contract_file: "/c/contract.json",
    model: null,
    env: {},
    ...over,
  });

  it("fills every placeholder inside argv elements, never through a shell", async () => {
    const reg = createProviderRegistry({
      mine: {
        command: [
          "my-agent",
          "--in={prompt_file}",
          "{worktree}",
          "{item_id}/{job_id}",
          "{phase}#{attempt}",
          "-m",
          "{model}",
          "{contract_file}",
          "{unknown}",
          "$(rm -rf /)",
        ],
        model: "m1",
        stdin: "none",
        env: { A: "1" },
      },
    });
    const p = reg.get("mine");
    expect(p?.kind).toBe("command");
    const plan = await p?.plan(ctx());
    expect(plan?.argv).toEqual([
      "my-agent",
      "--in=/p/prompt",
      "/w/t",
      "bd-1/bd-1-review",
      "review#2",
      "-m",
      "m1",
      "/c/contract.json",
      "{unknown}",
      "$(rm -rf /)",
    ]);
    expect(plan?.stdin).toBe("none");
    expect(plan?.env).toEqual({ A: "1" });
    expect((await p?.plan(ctx({ model: "override" })))?.argv[6]).toBe("override");
    expect(
      fillPlaceholders(["{attempt}{attempt}"], {
        prompt_file: "",
        worktree: "",
        item_id: "",
        job_id: "",
        phase: "",
        attempt: "3",
        model: "",
        contract_file: "",
      }),
    ).toEqual(["33"]);
  });

  it("is available when its preflight argv exits 0, or without one when argv[0] resolves", async () => {
    const env = { PATH: "/usr/bin:/bin", HOME: tempDir() };
    const providers: Record<string, ProviderConfig> = {
      good: { command: ["true"], preflight: ["/bin/sh", "-c", "exit 0"] },
      bad: { command: ["true"], preflight: ["/bin/sh", "-c", "exit 3"] },
      found: { command: ["sh", "-c", "echo"] },
      lost: { command: ["no-such-agent-binary"] },
    };
    expect(await preflight("good", env, providers)).toMatchObject({ ok: true });
    expect(await preflight("bad", env, providers)).toMatchObject({ ok: false, reason_code: "bad_preflight_failed" });
    expect(await preflight("found", env, providers)).toMatchObject({ ok: true });
    expect(await preflight("lost", env, providers)).toMatchObject({ ok: false, reason_code: "lost_binary_missing" });
  });

  it("a config entry with a command replaces a built-in; one without tunes it", async () => {
    const reg = createProviderRegistry({ codex: { command: ["x"] }, gemini: { model: "gemini-9", max_parallel: 2 } });
    expect(reg.get("codex")?.kind).toBe("command");
    expect(reg.get("gemini")?.max_parallel).toBe(2);
    expect((await reg.get("gemini")?.plan(ctx()))?.argv).toContain("gemini-9");
    expect(reg.get("unknown-thing")).toBeNull();
    expect(reg.names()).toEqual(expect.arrayContaining(["opencode", "claude-code", "cc-glm", "gemini", "codex"]));
  });

  it("opencode gets its prompt as argv text, points to the file when it is too long, and meta never holds it", async () => {
    const d = tempDir();
    const small = path.join(d, "small");
    const big = path.join(d, "big");
    writeFileSync(small, "Implement bd-1");
    writeFileSync(big, "x".repeat(200 * 1024));
    const p = createProviderRegistry().get("opencode");
    const a = await p?.plan(ctx({ prompt_file: small, phase: "implement" }));
    expect(a?.argv.slice(0, 8)).toEqual(["opencode", "run", "-m", "zai-coding-plan/glm-4.6", "--format", "json", "--dir", "/w/t"]);
    expect(a?.argv[8]).toBe("Implement bd-1");
    expect(a?.argv_for_meta[8]).toBe(`<prompt text from ${small}>`);
    expect(a?.stdin).toBe("none");
    const b = await p?.plan(ctx({ prompt_file: big }));
    expect(b?.argv[8]).toContain(big);
    expect(Buffer.byteLength(b?.argv[8] ?? "")).toBeLessThan(1024);
  });
});
