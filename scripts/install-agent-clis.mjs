#!/usr/bin/env node
// Installs the real agent CLIs that test/real-agents drives, at pinned versions, into a cache
// directory outside node_modules (default `.cache/agent-clis/`, git-ignored), so `npm ci` stays
// light and the tier runs the same binaries everywhere. Idempotent: a stamp file naming the pins
// makes a second run a no-op. Exits non-zero, loudly, when a CLI cannot be installed or does not
// answer `--version`: the real-agent tier fails rather than skips.
//
//   node scripts/install-agent-clis.mjs [--print-bin-dir]
//   env DX_BATCH_AGENT_CLI_CACHE overrides the cache directory.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The versions measured in REFERENCE §6. Change them together with the mocks. */
export const AGENT_CLI_PINS = [
  { name: "claude", pkg: "@anthropic-ai/claude-code", version: "2.1.197" },
  { name: "codex", pkg: "@openai/codex", version: "0.171.0" },
  { name: "opencode", pkg: "opencode-ai", version: "1.18.33" },
  { name: "gemini", pkg: "@google/gemini-cli", version: "0.61.0" },
];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const cacheDir = () => path.resolve(process.env.DX_BATCH_AGENT_CLI_CACHE || path.join(root, ".cache", "agent-clis"));
const pinKey = () => AGENT_CLI_PINS.map((p) => `${p.pkg}@${p.version}`).join(" ");
export const prefixDir = () => path.join(cacheDir(), "v1");
export const binDir = () => path.join(prefixDir(), "node_modules", ".bin");

function versionOk(bin) {
  try {
    const out = execFileSync(bin, ["--version"], { encoding: "utf8", timeout: 60_000, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, HOME: cacheDir(), DISABLE_TELEMETRY: "1" } });
    return out.trim();
  } catch (e) {
    return `FAILED: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`;
  }
}

export function installAgentClis({ log = (s) => process.stderr.write(`${s}\n`) } = {}) {
  const prefix = prefixDir();
  const stamp = path.join(prefix, "installed.json");
  if (existsSync(stamp)) {
    try {
      const s = JSON.parse(readFileSync(stamp, "utf8"));
      if (s.pins === pinKey() && AGENT_CLI_PINS.every((p) => existsSync(path.join(binDir(), p.name)))) return binDir();
    } catch {
      // a torn stamp: reinstall
    }
  }
  const tmp = `${prefix}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeFileSync(path.join(tmp, "package.json"), JSON.stringify({ name: "dx-batch-agent-clis", private: true, version: "0.0.0" }, null, 2));
  log(`installing ${pinKey()} into ${prefix} (one time; a few minutes)`);
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error", ...AGENT_CLI_PINS.map((p) => `${p.pkg}@${p.version}`)], {
    cwd: tmp,
    stdio: ["ignore", "inherit", "inherit"],
    timeout: 20 * 60_000,
  });
  rmSync(prefix, { recursive: true, force: true });
  renameSync(tmp, prefix);
  const versions = {};
  const bad = [];
  for (const p of AGENT_CLI_PINS) {
    const v = versionOk(path.join(binDir(), p.name));
    versions[p.name] = v;
    if (v.startsWith("FAILED") || !v.includes(p.version)) bad.push(`${p.name}: ${v}`);
  }
  if (bad.length > 0) throw new Error(`agent CLIs installed but not working:\n  ${bad.join("\n  ")}`);
  writeFileSync(stamp, JSON.stringify({ pins: pinKey(), versions, installed_at: new Date().toISOString() }, null, 2));
  log(`agent CLIs ready: ${JSON.stringify(versions)}`);
  return binDir();
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const dir = installAgentClis();
    if (process.argv.includes("--print-bin-dir")) process.stdout.write(`${dir}\n`);
  } catch (e) {
    process.stderr.write(`error: agent_clis_install_failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
