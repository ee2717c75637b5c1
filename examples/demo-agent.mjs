#!/usr/bin/env node
// STAND-IN AGENT for the dx-batch demo. It is NOT a coding model: it plays the part opencode or
// Claude Code would play, so the demo runs offline with no credentials. It reads the prompt on
// stdin, makes a small real change in the worktree, commits it with the Feature-Key trailer and
// writes a contract to $DX_BATCH_CONTRACT_FILE, exactly as a real agent is asked to.
//
// Its behaviour comes from a `[demo: …]` tag in the issue description (which the prompt carries):
//   [demo: approve]        implement, then approve on review
//   [demo: revise-once]    the first review asks for a revision, the second approves
//   [demo: needs-human]    implement reports the item blocked
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const env = process.env;
const item = env.DX_BATCH_ITEM_ID ?? "unknown";
const phase = env.DX_BATCH_PHASE ?? "implement";
const attempt = Number(env.DX_BATCH_ATTEMPT ?? "1");
const contractFile = env.DX_BATCH_CONTRACT_FILE;
const name = process.argv[2] ?? "demo-agent";
const prompt = readFileSync(0, "utf8");
const tag = /\[demo: ([a-z-]+)\]/.exec(prompt)?.[1] ?? "approve";
const thinkMs = Number(env.DEMO_AGENT_THINK_MS ?? "300");

const git = (...args) => execFileSync("git", args, { cwd: process.cwd(), encoding: "utf8" }).trim();
const deliver = (contract) => {
  const text = JSON.stringify({ ...contract, timestamp: new Date().toISOString() });
  if (contractFile) writeFileSync(contractFile, text, { mode: 0o600 });
  else console.log(`CONTRACT:JSON:${text}`);
};

await new Promise((r) => setTimeout(r, thinkMs));
console.log(`[${name}] ${phase} ${item} attempt ${attempt} (${tag})`);

if (phase === "implement") {
  if (tag === "needs-human") {
    deliver({
      phase: "implement",
      beads_id: item,
      status: "blocked",
      artifacts: { files_changed: [], commits: [] },
      summary: "The issue asks for a product decision (which currency to round to) that is not in the description.",
    });
    process.exit(0);
  }
  const file = path.join("notes", `${item}.md`);
  mkdirSync("notes", { recursive: true });
  appendFileSync(file, `- attempt ${attempt} by ${name}\n`);
  git("add", file);
  git("-c", "user.name=demo-agent", "-c", "user.email=demo-agent@example.invalid", "commit", "-q", "-m", `${item}: attempt ${attempt}\n\nFeature-Key: ${item}`);
  const sha = git("rev-parse", "HEAD");
  deliver({
    phase: "implement",
    beads_id: item,
    status: "completed",
    artifacts: { files_changed: [file], commits: [{ sha, message: `${item}: attempt ${attempt}` }], tests_passed: true },
    summary: `Recorded attempt ${attempt} in ${file}.`,
    duration_sec: thinkMs / 1000,
  });
} else {
  const revise = tag === "revise-once" && attempt === 1;
  deliver({
    phase: "review",
    beads_id: item,
    verdict: revise ? "REVISION_REQUIRED" : "APPROVED",
    findings: revise
      ? [{ type: "major", message: "The change has no test; add one for the rounding rule.", file: `notes/${item}.md`, line: 1 }]
      : [{ type: "positive", message: "Meets the acceptance criteria." }],
    summary: revise ? "One major finding." : "Looks good.",
    reviewer: name,
  });
}
