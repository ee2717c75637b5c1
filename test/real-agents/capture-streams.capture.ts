import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";
import { it } from "vitest";
import { claudeArgv } from "../../src/runner/providers/claude-code.js";
import { codexArgv } from "../../src/runner/providers/codex.js";
import { geminiArgv } from "../../src/runner/providers/gemini.js";
import { opencodeArgv } from "../../src/runner/providers/opencode.js";
import { REPO } from "../helpers/build.js";
import { happyScript } from "../fixtures/mock-models/script.js";
import { agentCliBinDir, agentSandbox, git, MODEL, type CliName } from "./harness.js";

// Not part of `npm test`: re-records the real stream lines the parser tables (streams.test.ts) are
// fed with, from each pinned CLI against its mock: one happy implement run and one 429 storm.
//   npx vitest run --config test/real-agents/capture.vitest.config.ts

const OUT = path.join(REPO, "test", "fixtures", "mock-models", "captured");

/** The argv the built-in providers run, so the captured lines are the ones dx-batch reads. */
const argv = (cli: CliName, wt: string, prompt: string): string[] => {
  switch (cli) {
    case "claude":
      return claudeArgv(MODEL.claude);
    case "codex":
      return codexArgv(MODEL.codex, wt);
    case "opencode":
      return opencodeArgv(MODEL.opencode, wt, prompt);
    case "gemini":
      return geminiArgv(MODEL.gemini);
  }
};

async function capture(cli: CliName, kind: "happy" | "429", ms: number): Promise<void> {
  const script = kind === "happy" ? happyScript() : () => ({ kind: "http_error" as const, status: 429 });
  const sb = await agentSandbox(cli, script);
  try {
    const wt = sb.repo;
    git(wt, "checkout", "-q", "-b", "dx/cap-1");
    const prompt = `You are implementing tracker item cap-1: capture\n\nWork only in the git worktree ${wt} (base commit x). This is attempt 1.\n`;
    const [file, ...args] = argv(cli, wt, prompt);
    const env = { ...sb.env, ...(cli === "opencode" ? { OPENCODE_CONFIG_CONTENT: JSON.stringify({ permission: { "*": "allow" } }) } : {}) };
    const r = await execa(path.join(agentCliBinDir(), file ?? ""), args, {
      cwd: wt,
      env,
      extendEnv: false,
      reject: false,
      input: cli === "opencode" ? "" : prompt,
      timeout: ms,
      killSignal: "SIGKILL",
      all: true,
    });
    const lines = String(r.all ?? "")
      .split("\n")
      .filter((l) => l.trim() !== "");
    mkdirSync(OUT, { recursive: true });
    writeFileSync(path.join(OUT, `${cli}-${kind}.log`), `${lines.slice(0, 400).join("\n")}\n`);
    process.stderr.write(`[capture] ${cli} ${kind}: exit ${r.exitCode ?? "killed"}, ${lines.length} lines\n`);
  } finally {
    await sb.close();
  }
}

for (const cli of ["claude", "codex", "opencode", "gemini"] as const) {
  it(`${cli} happy`, () => capture(cli, "happy", 180_000), 300_000);
  it(`${cli} 429`, () => capture(cli, "429", 45_000), 300_000);
}
