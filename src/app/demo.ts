import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { TrackerIssue } from "../tracker/port.js";

// The demo wave of the README's first command: a throw-away git repository with a small project,
// a Beads-shaped issues.jsonl, and a config that runs the stand-in agent (examples/demo-agent.mjs)
// as two `command` providers. Nothing outside the temp directory is touched.

const AGENT = fileURLToPath(new URL("../../examples/demo-agent.mjs", import.meta.url));

/** A tracker issue as a Beads issues.jsonl line spells it: `dependencies` in place of `blocked_by`. */
interface DemoIssue extends Omit<TrackerIssue, "blocked_by"> {
  dependencies: { id: string; dependency_type: "blocks" }[];
}

const issue = (id: string, title: string, tag: string, deps: string[] = []): DemoIssue => ({
  id,
  title,
  description: `${title}. [demo: ${tag}]`,
  acceptance_criteria: "The change is committed with a Feature-Key trailer and documented in notes/.",
  status: "open",
  labels: ["demo"],
  dependencies: deps.map((d) => ({ id: d, dependency_type: "blocks" })),
});

export const DEMO_ISSUES: DemoIssue[] = [
  issue("demo-1", "Add a price formatter", "approve"),
  issue("demo-2", "Round prices to cents", "revise-once"),
  issue("demo-3", "Pick the display currency", "needs-human"),
  issue("demo-4", "Use the formatter in the receipt", "approve", ["demo-1"]),
  issue("demo-5", "Show the currency symbol", "approve", ["demo-3"]),
  issue("demo-6", "Document the pricing module", "approve"),
];

/** The items the demo is designed to leave unapproved: the one needing a human, and its dependent. */
export const DEMO_NOT_APPROVED: readonly string[] = ["demo-3", "demo-5"];

/**
 * The demo's exit: 0 when its wave completed exactly as designed (exit 4 of start, with only the
 * designed items not approved); otherwise start's own code, with 4 for an unexpected set.
 */
export function demoExitCode(startCode: number, notApproved: readonly string[]): number {
  if (startCode !== 4) return startCode;
  const same = notApproved.length === DEMO_NOT_APPROVED.length && DEMO_NOT_APPROVED.every((id) => notApproved.includes(id));
  return same ? 0 : 4;
}

export interface DemoSetup {
  root: string;
  repo: string;
  configPath: string;
  itemIds: string[];
}

/** The three store roots of a self-contained setup under `root` (the demo's, and the benchmarks'). */
export const storeRootsUnder = (root: string): { artifact_dir: string; runner_log_dir: string; workspace_root: string } => ({
  artifact_dir: path.join(root, "artifacts"),
  runner_log_dir: path.join(root, "runner"),
  workspace_root: path.join(root, "agents"),
});

export function setUpDemo(baseDir?: string): DemoSetup {
  const root = baseDir ?? mkdtempSync(path.join(os.tmpdir(), "dx-batch-demo-"));
  const repo = path.join(root, "shop");
  mkdirSync(path.join(repo, "src"), { recursive: true });
  writeFileSync(path.join(repo, "README.md"), "# shop\n\nA tiny project the dx-batch demo works on.\n");
  writeFileSync(path.join(repo, "src", "price.js"), "export const price = (cents) => cents / 100;\n");
  const git = (...args: string[]) =>
    execFileSync("git", ["-c", "user.name=dx-batch demo", "-c", "user.email=demo@example.invalid", ...args], { cwd: repo, stdio: "ignore" });
  git("init", "-q", "-b", "main");
  git("add", ".");
  git("commit", "-q", "-m", "shop: initial commit");

  const issuesPath = path.join(root, "issues.jsonl");
  writeFileSync(issuesPath, DEMO_ISSUES.map((i) => JSON.stringify(i)).join("\n") + "\n");

  const agent = (name: string) => ({ command: [process.execPath, AGENT, name], stdin: "prompt" as const });
  const config = {
    ...storeRootsUnder(root),
    repo,
    base: "main",
    max_parallel: 3,
    stall_minutes: 2,
    max_runtime_minutes: 5,
    retry_chain: ["demo-agent", "demo-agent-b", "blocked"],
    review_must_differ: true,
    tracker: { type: "file", path: issuesPath },
    providers: { "demo-agent": agent("demo-agent"), "demo-agent-b": agent("demo-agent-b") },
  };
  const configPath = path.join(root, "dx-batch.config.json");
  writeFileSync(configPath, JSON.stringify(config, null, 2) + "\n");
  return { root, repo, configPath, itemIds: DEMO_ISSUES.map((i) => i.id) };
}
