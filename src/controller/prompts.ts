import type { Finding } from "../core/contract.js";

// Prompts are built from the tracker's text and the wave's own record. The original tool sent only
// the id and lost review findings between attempts (REFERENCE §1); these templates carry both.
// A config may replace either template with a file using the same {{placeholders}}.

export interface ImplementPromptInput {
  item_id: string;
  title: string;
  description: string;
  acceptance_criteria: string;
  worktree: string;
  base_commit: string | null;
  attempt: number;
  contract_file: string;
  previous_findings: Finding[];
  previous_failure: string | null;
}

export interface ReviewPromptInput {
  item_id: string;
  title: string;
  description: string;
  acceptance_criteria: string;
  worktree: string;
  attempt: number;
  implement_summary: string | null;
  diff_range: string;
  contract_file: string;
  review?: ReviewMaterial | WorkerReview | null;
}

/** The change a reviewer is shown (issue #11): no git permission is needed to see the work. */
export interface ReviewMaterial {
  stat: string;
  patch: string;
  bytes: number;
  truncated: boolean;
  /** The last implement attempt's own commits. */
  attempt_range: { from: string | null; to: string | null } | null;
}

/** The diff a worker makes on its own host (a queue runner: the controller has no repository). */
export interface WorkerReview {
  on_worker: true;
  attempt_range: { from: string | null; to: string | null } | null;
}

/** The review template's variables that describe the change itself. */
type DiffVars = Record<"diff_range" | "diff_stat" | "diff_note" | "diff", string>;

/**
 * What a worker puts in place of each diff variable of a review prompt made for it: the
 * controller cannot diff a worktree that is on another host, so it leaves a mark per variable,
 * `[[dx-batch:worker:<name>]]`, and the worker, holding the pushed branch, fills them in
 * (fillWorkerDiff). Text no template or tracker item writes by accident.
 */
const MARK_PREFIX = "[[dx-batch:worker:";
const MARK = /\[\[dx-batch:worker:(diff_range|diff_stat|diff_note|diff)\]\]/g;
const WORKER_MARKS: DiffVars = {
  diff_range: `${MARK_PREFIX}diff_range]]`,
  diff_stat: `${MARK_PREFIX}diff_stat]]`,
  diff_note: `${MARK_PREFIX}diff_note]]`,
  diff: `${MARK_PREFIX}diff]]`,
};

/** A diff as the prompt shows it (workspace/attempt-commit.ts rangeDiff makes one). */
type DiffText = Pick<ReviewMaterial, "stat" | "patch" | "bytes" | "truncated">;

function diffVars(r: DiffText | null, diffRange: string): DiffVars {
  return {
    diff_range: diffRange,
    diff_stat: r ? r.stat || "(no changes)" : "(not available: read the worktree's history)",
    diff_note: r?.truncated ? ` (cut at ${Buffer.byteLength(r.patch)} of ${r.bytes} bytes; the rest is in ${diffRange})` : "",
    diff: r ? "```diff\n" + r.patch + (r.patch.endsWith("\n") ? "" : "\n") + "```" : "(not available)",
  };
}

/** Whether a prompt was made for a worker to fill in its review diff. */
export const hasWorkerMarks = (prompt: string): boolean => prompt.includes(MARK_PREFIX);

/**
 * A worker's side of a review prompt made for it: its own diff of the item's change (null: it
 * could not make one) in place of the controller's marks. Every mark is replaced in one pass, so
 * a diff that happens to contain a mark's text is left as it is.
 */
export function fillWorkerDiff(prompt: string, r: DiffText | null, diffRange: string): string {
  const vars = diffVars(r, diffRange);
  return prompt.replace(MARK, (_m, name: keyof DiffVars) => vars[name]);
}

export const DEFAULT_IMPLEMENT_TEMPLATE = `You are implementing tracker item {{item_id}}: {{title}}

## Description
{{description}}

## Acceptance criteria
{{acceptance_criteria}}

## Where
Work only in the git worktree {{worktree}} (base commit {{base_commit}}). This is attempt {{attempt}}.
{{previous}}
## Rules
- Run every command from the worktree itself (it is your working directory).
- Commit your work on the current branch (git add, then git commit). Every commit message ends
  with the trailer line:
  Feature-Key: {{item_id}}
  Whatever you leave uncommitted when you report "completed" is committed for you.
- When you are done, deliver a JSON contract. Write it to the file {{contract_file}}
  (the path is also in $DX_BATCH_CONTRACT_FILE). If you cannot write files, print one line instead:
  CONTRACT:JSON:{...}
- The contract has exactly these keys:
  {"phase":"implement","beads_id":"{{item_id}}","status":"completed|partial|failed|no_op|blocked",
   "artifacts":{"files_changed":[...],"commits":[{"sha":"...","message":"..."}],"tests_passed":true,"tests_output":"..."},
   "summary":"...","findings":[{"type":"critical|major|minor|suggestion|positive","message":"..."}],
   "timestamp":"<ISO 8601>","duration_sec":0}
  Use "blocked" only when the item cannot be done without a human decision, and say why in summary.
`;

export const DEFAULT_REVIEW_TEMPLATE = `You are reviewing the work done for tracker item {{item_id}}: {{title}}

## Description
{{description}}

## Acceptance criteria
{{acceptance_criteria}}

## What the implementer reported
{{implement_summary}}

## What to review
The item's whole change is {{diff_range}} in the git worktree {{worktree}} (attempt {{attempt}}).
The last implement attempt's own commits are {{attempt_range}}. The diff is below, so you need
no git command to see it; you may read files in the worktree. Do not change any file.

### git diff --stat
{{diff_stat}}

### The diff{{diff_note}}
{{diff}}

## Verdict rules
- APPROVED: the acceptance criteria are met and nothing critical or major is wrong.
- REVISION_REQUIRED: fixable problems; list each one as a finding the next attempt can act on.
- BLOCKED: the item cannot be finished as specified; say why.
Findings are required unless the verdict is APPROVED.

Deliver the verdict as JSON, written to {{contract_file}} (also in $DX_BATCH_CONTRACT_FILE), or
printed as one line CONTRACT:JSON:{...}. Exactly these keys:
  {"phase":"review","beads_id":"{{item_id}}","verdict":"APPROVED|REVISION_REQUIRED|BLOCKED",
   "findings":[{"type":"critical|major|minor|suggestion|positive","message":"...","file":"...","line":1}],
   "summary":"...","timestamp":"<ISO 8601>","reviewer":"<your name>"}
`;

function previousSection(findings: readonly Finding[], failure: string | null): string {
  let out = "";
  if (findings.length > 0) {
    const lines = findings.map((f) => `- [${f.type}] ${f.message}${f.file ? ` (${f.file}${f.line ? `:${f.line}` : ""})` : ""}`);
    out += `\n## The last review asked for these changes\n${lines.join("\n")}\n`;
  }
  if (failure) out += `\n## The previous attempt failed\n${failure}\nAvoid repeating that failure.\n`;
  return out;
}

export function render(template: string, vars: Readonly<Record<string, string>>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (whole, name: string) => vars[name] ?? whole);
}

export function implementPrompt(input: ImplementPromptInput, template = DEFAULT_IMPLEMENT_TEMPLATE): string {
  return render(template, {
    item_id: input.item_id,
    title: input.title,
    description: input.description || "(no description in the tracker)",
    acceptance_criteria: input.acceptance_criteria || "(none given: use the description)",
    worktree: input.worktree,
    base_commit: input.base_commit ?? "(none yet: the branch has no commit)",
    attempt: String(input.attempt),
    contract_file: input.contract_file,
    previous: previousSection(input.previous_findings, input.previous_failure),
  });
}

export function reviewPrompt(input: ReviewPromptInput, template = DEFAULT_REVIEW_TEMPLATE): string {
  const r = input.review ?? null;
  return render(template, {
    item_id: input.item_id,
    title: input.title,
    description: input.description || "(no description in the tracker)",
    acceptance_criteria: input.acceptance_criteria || "(none given: use the description)",
    implement_summary: input.implement_summary ?? "(no summary)",
    worktree: input.worktree,
    attempt: String(input.attempt),
    contract_file: input.contract_file,
    attempt_range: r?.attempt_range ? `${r.attempt_range.from ?? "(root)"}..${r.attempt_range.to ?? "(none)"}` : "(not recorded)",
    ...(r !== null && "on_worker" in r ? WORKER_MARKS : diffVars(r, input.diff_range)),
  });
}

/** The prompt of one dispatch, from the tracker's text and what the wave carried from earlier attempts. */
export function attemptPrompt(
  a: {
    item: ItemCarry;
    phase: "implement" | "review";
    attempt: number;
    worktree: string;
    base_commit: string | null;
    head: string | null;
    contract_file: string;
    review?: ReviewMaterial | WorkerReview | null;
  },
  issue: { title: string; description: string; acceptance_criteria: string },
  templates: { implement?: string; review?: string },
): string {
  const common = {
    item_id: a.item.beads_id,
    title: issue.title,
    description: issue.description,
    acceptance_criteria: issue.acceptance_criteria,
    worktree: a.worktree,
    attempt: a.attempt,
    contract_file: a.contract_file,
  };
  if (a.phase === "implement") {
    return implementPrompt(
      { ...common, base_commit: a.base_commit, previous_findings: a.item.carry.findings, previous_failure: a.item.carry.failure },
      templates.implement,
    );
  }
  const diff_range = a.base_commit === null ? `${a.head ?? "HEAD"} (every commit of the branch)` : `${a.base_commit}..${a.head ?? "HEAD"}`;
  return reviewPrompt({ ...common, implement_summary: a.item.carry.summary, diff_range, review: a.review ?? null }, templates.review);
}

/** What a prompt needs of the item's record. */
export interface ItemCarry {
  beads_id: string;
  carry: { findings: Finding[]; failure: string | null; summary: string | null };
}
