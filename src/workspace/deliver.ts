import type { PrConfig } from "../config/types.js";
import type { Finding } from "../core/contract.js";
import type { ItemDelivered } from "../core/events.js";
import { DeliveryReason } from "../core/reasons.js";
import { git } from "./git.js";
import { loadExeca } from "../shared/lazy-execa.js";

// Approved work goes somewhere (issue #13): push the item's branch to the configured remote and,
// with `open: "gh"`, open a pull request. Every outcome is a record; nothing here throws, so a
// failure can be recorded on the item without touching its approval.

export interface DeliveryInput {
  item_id: string;
  title: string;
  worktree: string;
  wave_id: string;
  summary: string | null;
  verdict: string | null;
  findings: readonly Finding[];
  /** Usage lines when the wave recorded any (issue #11); empty: not recorded. */
  usage: readonly string[];
}

/** What delivering an approved item did: the `item_delivered` event without its envelope. */
export type DeliveryResult = Omit<ItemDelivered, "event" | "item_id" | "seq" | "at" | "epoch">;

export const itemBranch = (itemId: string): string => `dx/${itemId}`;

export async function deliverApproved(pr: PrConfig, input: DeliveryInput, env: NodeJS.ProcessEnv = process.env): Promise<DeliveryResult> {
  const remote = pr.remote ?? "origin";
  const branch = itemBranch(input.item_id);
  const head = await git(["rev-parse", "HEAD"], { cwd: input.worktree, timeoutMs: 20_000 });
  const base: Omit<DeliveryResult, "reason_code" | "error" | "pushed"> = { remote, branch, head: head.ok ? head.stdout.trim() : null, pr_url: null };
  // The branch as the worktree has it, whatever is checked out: HEAD is what was reviewed.
  const push = await git(["push", "--porcelain", remote, `HEAD:refs/heads/${branch}`], { cwd: input.worktree, timeoutMs: 120_000 });
  if (!push.ok) {
    return { ...base, pushed: false, reason_code: DeliveryReason.pr_push_failed, error: commandError(`git push ${remote} ${branch}`, push.error, push.stderr) };
  }
  if ((pr.open ?? "none") !== "gh") return { ...base, pushed: true, reason_code: DeliveryReason.pr_pushed, error: null };

  const baseBranch = pr.base ?? (await remoteDefaultBranch(input.worktree, remote));
  const args = ["pr", "create", "--head", branch, "--title", prTitle(input), "--body", prBody(input)];
  if (baseBranch !== null) args.push("--base", baseBranch);
  if (pr.draft ?? true) args.push("--draft");
  const r = await (await loadExeca())("gh", args, { cwd: input.worktree, env, reject: false, timeout: 120_000, stdin: "ignore" });
  const url = /https?:\/\/\S+/.exec(r.stdout.trim().split("\n").pop() ?? "")?.[0] ?? null;
  if (r.exitCode !== 0 || url === null) {
    const why = r.exitCode === undefined ? (r.shortMessage ?? "gh did not run") : `${r.stderr}${r.exitCode === 0 ? "\n(gh printed no pull request URL)" : ""}`;
    return { ...base, pushed: true, reason_code: DeliveryReason.pr_open_failed, error: commandError("gh pr create", null, why) };
  }
  return { ...base, pushed: true, pr_url: url, reason_code: DeliveryReason.pr_opened, error: null };
}

const commandError = (what: string, error: string | null, stderr: string): string => `${what} failed: ${(error ?? stderr).trim() || "no message"}`;

/** `refs/heads/main` of `git ls-remote --symref <remote> HEAD`, or null (then gh picks). */
async function remoteDefaultBranch(cwd: string, remote: string): Promise<string | null> {
  const r = await git(["ls-remote", "--symref", remote, "HEAD"], { cwd, timeoutMs: 60_000 });
  if (!r.ok) return null;
  return /^ref: refs\/heads\/(\S+)\s+HEAD/m.exec(r.stdout)?.[1] ?? null;
}

export const prTitle = (i: DeliveryInput): string => `${i.item_id}: ${i.title}`;

export function prBody(i: DeliveryInput): string {
  const lines = [`Approved by dx-batch wave \`${i.wave_id}\`.`, "", "## Summary", "", i.summary ?? "(the agent gave no summary)", ""];
  lines.push("## Review", "", `Verdict: **${i.verdict ?? "none (approved without review)"}**`, "");
  if (i.findings.length === 0) lines.push("No findings.");
  for (const f of i.findings) lines.push(`- ${f.type}: ${f.message}${f.file ? ` (\`${f.file}${f.line ? `:${f.line}` : ""}\`)` : ""}`);
  lines.push("", "## Usage", "", ...(i.usage.length === 0 ? ["(not recorded)"] : i.usage.map((u) => `- ${u}`)));
  return `${lines.join("\n")}\n`;
}
