// The agent contracts of SPEC §7 as the core sees them. The JSON Schemas that validate them at the
// boundary live in src/contract/schemas.ts; a type test there keeps both in step.

export type ImplementStatus = "completed" | "partial" | "failed" | "no_op" | "blocked";
export type ReviewVerdict = "APPROVED" | "REVISION_REQUIRED" | "BLOCKED";
export type FindingType = "critical" | "major" | "minor" | "suggestion" | "positive";

export interface Finding {
  type: FindingType;
  message: string;
  file?: string;
  line?: number;
}

export interface ImplementContract {
  phase: "implement";
  beads_id: string;
  status: ImplementStatus;
  artifacts: {
    files_changed: string[];
    commits: { sha: string; message: string }[];
    tests_passed?: boolean;
    tests_output?: string;
  };
  summary?: string;
  findings?: Finding[];
  timestamp: string;
  duration_sec?: number;
}

export interface ReviewContract {
  phase: "review";
  beads_id: string;
  verdict: ReviewVerdict;
  findings: Finding[];
  summary?: string;
  coverage?: string;
  timestamp: string;
  reviewer?: string;
}

export type Contract = ImplementContract | ReviewContract;
