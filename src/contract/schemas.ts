import { Type, type Static } from "@sinclair/typebox";
import { StringEnum, schemaDocument } from "../schema/kit.js";

// The agent contracts of SPEC §7, the one source of their JSON Schemas (schemas/*.schema.json are
// generated from here by scripts/gen-schemas.mjs; test/contract checks they have not drifted).
// The core's hand-written types (src/core/contract.ts) are kept equal to these by a type test.

export const IMPLEMENT_CONTRACT_SCHEMA_ID = "urn:dx-batch:schema:implement-contract";
export const REVIEW_CONTRACT_SCHEMA_ID = "urn:dx-batch:schema:review-contract";

export const IMPLEMENT_STATUSES = ["completed", "partial", "failed", "no_op", "blocked"] as const;
export const REVIEW_VERDICTS = ["APPROVED", "REVISION_REQUIRED", "BLOCKED"] as const;
export const FINDING_TYPES = ["critical", "major", "minor", "suggestion", "positive"] as const;

// Agents write timestamps by hand; an attempt should not be thrown away over a missing `Z`, so only
// the ISO 8601 date prefix is required rather than the strict RFC 3339 `date-time` format.
const Timestamp = Type.String({ pattern: "^[0-9]{4}-[0-9]{2}-[0-9]{2}", description: "when the contract was written, ISO 8601" });
const BeadsId = Type.String({ minLength: 1, maxLength: 64, description: "the tracker item id (for review too, not the `-review` job id)" });

export const FindingSchema = Type.Object(
  {
    type: StringEnum(FINDING_TYPES, { description: "severity, or `positive` for what is good" }),
    message: Type.String({ minLength: 1 }),
    file: Type.Optional(Type.String()),
    line: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export const ImplementSchema = Type.Object(
  {
    phase: Type.Literal("implement"),
    beads_id: BeadsId,
    status: StringEnum(IMPLEMENT_STATUSES),
    artifacts: Type.Object(
      {
        files_changed: Type.Array(Type.String()),
        commits: Type.Array(Type.Object({ sha: Type.String({ minLength: 1 }), message: Type.String() }, { additionalProperties: false })),
        tests_passed: Type.Optional(Type.Boolean()),
        tests_output: Type.Optional(Type.String()),
      },
      { additionalProperties: false },
    ),
    summary: Type.Optional(Type.String()),
    findings: Type.Optional(Type.Array(FindingSchema)),
    timestamp: Timestamp,
    duration_sec: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: false },
);

export const ReviewSchema = Type.Object(
  {
    phase: Type.Literal("review"),
    beads_id: BeadsId,
    verdict: StringEnum(REVIEW_VERDICTS),
    findings: Type.Array(FindingSchema, { description: "non-empty unless verdict is APPROVED" }),
    summary: Type.Optional(Type.String()),
    coverage: Type.Optional(Type.String()),
    timestamp: Timestamp,
    reviewer: Type.Optional(Type.String()),
  },
  {
    additionalProperties: false,
    // A verdict other than APPROVED has to say what is wrong.
    if: { type: "object", properties: { verdict: { type: "string", enum: ["REVISION_REQUIRED", "BLOCKED"] } }, required: ["verdict"] },
    then: { type: "object", properties: { findings: { type: "array", minItems: 1 } } },
  },
);

export type ImplementContractStatic = Static<typeof ImplementSchema>;
export type ReviewContractStatic = Static<typeof ReviewSchema>;

export const implementContractDocument = (): Record<string, unknown> =>
  schemaDocument(ImplementSchema, { id: IMPLEMENT_CONTRACT_SCHEMA_ID, title: "dx-batch implement contract" });
export const reviewContractDocument = (): Record<string, unknown> =>
  schemaDocument(ReviewSchema, { id: REVIEW_CONTRACT_SCHEMA_ID, title: "dx-batch review contract" });
