import type { ValidateFunction } from "ajv";
import type { Contract, ImplementContract, ReviewContract } from "../core/contract.js";
import { ItemReason } from "../core/reasons.js";
import { REVIEW_JOB_SUFFIX } from "../core/ids.js";
import { describeAjvError } from "../schema/ajv-errors.js";
import { validateImplementContract } from "./implement-validator.generated.js";
import { validateReviewContract } from "./review-validator.generated.js";

// The boundary where an agent's contract text becomes a typed Contract (SPEC §7): size, JSON,
// phase, schema, then the id cross-check. Every refusal carries the phase's reason code and a
// detail precise enough for the next attempt's prompt and for a human reading the report.

export type ContractPhase = "implement" | "review";

/** SPEC §13: a contract over 1 MiB is refused before it is parsed. */
export const MAX_CONTRACT_BYTES = 1024 * 1024;

export type ContractValidation = { ok: true; contract: Contract } | { ok: false; reason_code: ItemReason; detail: string };

export interface ContractExpectation {
  /** The tracker item id (not the runner job id: a review job `<item>-review` still expects `<item>`). */
  item_id: string;
  phase: ContractPhase;
}

const REASON: Record<ContractPhase, ItemReason> = {
  implement: ItemReason.implement_contract_missing_or_invalid,
  review: ItemReason.review_contract_missing_or_invalid,
};

// Precompiled from src/contract/schemas.ts (scripts/gen-schemas.mjs): a controller judging
// contracts loads neither TypeBox nor ajv's compiler, and compiles nothing (issue #14).
const implementValidator = validateImplementContract as ValidateFunction<ImplementContract>;
const reviewValidator = validateReviewContract as ValidateFunction<ReviewContract>;

export function validateContract(text: string, expect: ContractExpectation): ContractValidation {
  const refuse = (detail: string): ContractValidation => ({ ok: false, reason_code: REASON[expect.phase], detail });

  // String length is a lower bound on the UTF-8 size, so most oversized texts are refused unmeasured.
  if (text.length > MAX_CONTRACT_BYTES || Buffer.byteLength(text, "utf8") > MAX_CONTRACT_BYTES) {
    return refuse(`contract too large: over ${MAX_CONTRACT_BYTES} bytes (1 MiB)`);
  }

  let data: unknown;
  try {
    data = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch (e) {
    return refuse(notJsonDetail(e));
  }

  // A contract of the other phase would otherwise be reported as a pile of unknown keys.
  if (typeof data === "object" && data !== null && !Array.isArray(data) && "phase" in data) {
    const phase = data.phase;
    if (typeof phase === "string" && phase !== expect.phase && (phase === "implement" || phase === "review")) {
      return refuse(`phase mismatch: contract says ${JSON.stringify(phase)}, the job's phase is ${JSON.stringify(expect.phase)}`);
    }
  }

  let contract: Contract;
  if (expect.phase === "implement") {
    if (!implementValidator(data)) return refuse(schemaDetail(implementValidator.errors));
    contract = data;
  } else {
    if (!reviewValidator(data)) return refuse(schemaDetail(reviewValidator.errors, data));
    contract = data;
  }

  if (contract.beads_id !== expect.item_id) {
    const hint = contract.beads_id === `${expect.item_id}${REVIEW_JOB_SUFFIX}` ? " (beads_id is the item id, not the review job id)" : "";
    return refuse(`beads_id mismatch: the contract's beads_id is not the item id ${JSON.stringify(expect.item_id)}${hint}`);
  }
  return { ok: true, contract };
}

/**
 * Where the JSON broke, never what is there: V8's messages quote the text ("Unexpected token 'r',
 * "root:*:19"... is not valid JSON"), and the text may be a secret an agent linked to.
 */
function notJsonDetail(e: unknown): string {
  const msg = e instanceof Error ? e.message : "";
  if (/Unexpected end of JSON input/.test(msg)) return "not JSON: the text ends before the JSON value does";
  const at = /at position (\d+)/.exec(msg);
  if (at?.[1] !== undefined) {
    const why = /^Unterminated string/.test(msg)
      ? "an unterminated string"
      : /^Bad control character/.test(msg)
        ? "a control character inside a string"
        : "invalid JSON";
    return `not JSON: ${why} at byte ${at[1]}`;
  }
  return "not JSON: invalid JSON at the start of the text";
}

function schemaDetail(errors: ValidateFunction["errors"], data?: unknown): string {
  const d = describeAjvError(errors, { quoteData: false });
  if (d.path === "/findings" && d.problem.includes("fewer than 1")) {
    const v = typeof data === "object" && data !== null && "verdict" in data ? data.verdict : null;
    // Only a known verdict is named: anything else from the file is not quoted.
    const verdict = v === "REVISION_REQUIRED" || v === "BLOCKED" ? JSON.stringify(v) : "not APPROVED";
    return `/findings: must not be empty when verdict is ${verdict} (only APPROVED may have no findings)`;
  }
  return `${d.path}: ${d.problem}`;
}
