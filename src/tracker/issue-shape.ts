import { createRequire } from "node:module";
import type { Static } from "@sinclair/typebox";
import type { TypeBuilder } from "../store/shapes.js";
import { isBeadsIssue } from "./issue-check.generated.js";
import type { TrackerIssue } from "./port.js";

// The Beads issue shape, as `bd show/ready --json` print it and as the file tracker reads it.
// Only the fields dx-batch uses are checked; every other field bd adds is let through, so a newer
// bd with more fields still parses.
//
// A dependency comes in either of bd's two shapes, both accepted:
//   - `bd show`: the depended-on issue itself plus `dependency_type` (`{id, …, dependency_type}`);
//   - the JSONL export: `{issue_id, depends_on_id, type}`.
// A bare string is read as a `blocks` dependency on that id, and a missing type means `blocks`
// (bd's own default for `bd dep add`). A field that is `null` (Go prints a nil slice that way)
// counts as absent.

/**
 * The schema, built from a TypeBox builder passed in: the check that runs is precompiled
 * (issue-check.generated.ts, from this function), so reading issues loads none of TypeBox's ~250
 * modules. TypeBox is loaded only to word why an issue was refused.
 */
export function beadsIssueShape(Type: TypeBuilder) {
  const DependencyObject = Type.Object({
    id: Type.Optional(Type.String()),
    depends_on_id: Type.Optional(Type.String()),
    dependency_type: Type.Optional(Type.String()),
    type: Type.Optional(Type.String()),
    status: Type.Optional(Type.String()),
  });
  const Dependency = Type.Union([Type.String(), DependencyObject]);
  return Type.Object({
    id: Type.String({ minLength: 1 }),
    title: Type.Optional(Type.String()),
    description: Type.Optional(Type.String()),
    acceptance_criteria: Type.Optional(Type.String()),
    status: Type.Optional(Type.String()),
    labels: Type.Optional(Type.Array(Type.String())),
    dependencies: Type.Optional(Type.Array(Dependency)),
  });
}
export type BeadsIssue = Static<ReturnType<typeof beadsIssueShape>>;

const requireCjs = createRequire(import.meta.url);

/** TypeBox's first error of a refused issue, in its words (loads TypeBox: only on a refusal). */
function firstIssueError(value: unknown): { path: string; message: string } | undefined {
  const { Type } = requireCjs("@sinclair/typebox") as typeof import("@sinclair/typebox");
  const { Errors } = requireCjs("@sinclair/typebox/errors") as typeof import("@sinclair/typebox/errors");
  return Errors(beadsIssueShape(Type), [], value).First();
}

/** One dependency in a normal form: the id depended on, its type, and its status when bd said. */
export interface NormalDependency {
  id: string;
  type: string;
  status: string | null;
}

export type IssueParse = { ok: true; issue: BeadsIssue; deps: NormalDependency[] } | { ok: false; detail: string };

const withoutNulls = (value: unknown): unknown =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null)) : value;

export function parseBeadsIssue(raw: unknown): IssueParse {
  const value = withoutNulls(raw);
  if (!isBeadsIssue(value)) {
    const first = firstIssueError(value);
    return { ok: false, detail: first ? `${first.path || "/"}: ${first.message}` : "not an issue object" };
  }
  const deps: NormalDependency[] = [];
  for (const [i, d] of (value.dependencies ?? []).entries()) {
    if (typeof d === "string") {
      deps.push({ id: d, type: "blocks", status: null });
      continue;
    }
    const id = d.depends_on_id ?? d.id;
    if (id === undefined || id === "") {
      return { ok: false, detail: `/dependencies/${i}: neither depends_on_id nor id` };
    }
    deps.push({ id, type: d.dependency_type ?? d.type ?? "blocks", status: d.status ?? null });
  }
  return { ok: true, issue: value, deps };
}

export function toTrackerIssue(issue: BeadsIssue, deps: readonly NormalDependency[]): TrackerIssue {
  return {
    id: issue.id,
    title: issue.title ?? "",
    description: issue.description ?? "",
    acceptance_criteria: issue.acceptance_criteria ?? "",
    status: issue.status ?? "open",
    labels: issue.labels ?? [],
    // parent-child and the other link types order nothing: only `blocks` gates dispatch.
    blocked_by: [...new Set(deps.filter((d) => d.type === "blocks").map((d) => d.id))],
  };
}
