import { describe, expect, it } from "vitest";
import { MAX_CONTRACT_BYTES, validateContract } from "../../src/contract/validate.js";

const IMPL = "implement_contract_missing_or_invalid";
const REV = "review_contract_missing_or_invalid";

const implement = (over: Record<string, unknown> = {}) => ({
  phase: "implement",
  beads_id: "bd-a1b2",
  status: "completed",
  artifacts: { files_changed: ["src/a.ts"], commits: [{ sha: "abc123", message: "feat: a" }], tests_passed: true, tests_output: "ok" },
  summary: "did it",
  findings: [{ type: "minor", message: "left a TODO", file: "src/a.ts", line: 3 }],
  timestamp: "2025-01-02T03:04:05Z",
  duration_sec: 12.5,
  ...over,
});

const review = (over: Record<string, unknown> = {}) => ({
  phase: "review",
  beads_id: "bd-a1b2",
  verdict: "APPROVED",
  findings: [],
  summary: "fine",
  coverage: "all files",
  timestamp: "2025-01-02T03:04:05Z",
  reviewer: "cc-glm",
  ...over,
});

const check = (value: unknown, phase: "implement" | "review", item = "bd-a1b2") =>
  validateContract(typeof value === "string" ? value : JSON.stringify(value), { item_id: item, phase });

function refused(r: ReturnType<typeof validateContract>): { reason_code: string; detail: string } {
  if (r.ok) throw new Error(`expected a refusal, got ${JSON.stringify(r.contract)}`);
  return r;
}

describe("validateContract: accepted", () => {
  it("accepts a full implement contract and returns it typed", () => {
    const r = check(implement(), "implement");
    expect(r).toEqual({ ok: true, contract: implement() });
  });

  it("accepts a minimal implement contract", () => {
    const r = check(
      { phase: "implement", beads_id: "bd-a1b2", status: "no_op", artifacts: { files_changed: [], commits: [] }, timestamp: "2025-01-02" },
      "implement",
    );
    expect(r.ok).toBe(true);
  });

  it("accepts every implement status", () => {
    for (const status of ["completed", "partial", "failed", "no_op", "blocked"]) expect(check(implement({ status }), "implement").ok).toBe(true);
  });

  it("accepts APPROVED with no findings, and REVISION_REQUIRED / BLOCKED with findings", () => {
    expect(check(review(), "review").ok).toBe(true);
    for (const verdict of ["REVISION_REQUIRED", "BLOCKED"]) {
      expect(check(review({ verdict, findings: [{ type: "major", message: "no tests" }] }), "review").ok).toBe(true);
    }
  });

  it("expects the item id in a review contract (the review job is <item>-review)", () => {
    expect(check(review({ beads_id: "demo-7f3a86.1.2" }), "review", "demo-7f3a86.1.2").ok).toBe(true);
  });

  it("tolerates surrounding whitespace and a byte-order mark", () => {
    expect(check(`\uFEFF\n${JSON.stringify(review())}\n`, "review").ok).toBe(true);
  });

  it("accepts a contract of exactly 1 MiB", () => {
    const base = JSON.stringify(implement({ summary: "" }));
    const padded = JSON.stringify(implement({ summary: "x".repeat(MAX_CONTRACT_BYTES - base.length) }));
    expect(Buffer.byteLength(padded)).toBe(MAX_CONTRACT_BYTES);
    expect(check(padded, "implement").ok).toBe(true);
  });
});

describe("validateContract: refused with the phase's reason code and a precise detail", () => {
  it("an extra top-level key, at its object with the allowed keys, never its name", () => {
    const r = refused(check(implement({ notes: "hi" }), "implement"));
    expect(r.reason_code).toBe(IMPL);
    expect(r.detail).toBe("/: unknown key (allowed: phase, beads_id, status, artifacts, summary, findings, timestamp, duration_sec)");
    expect(r.detail).not.toContain("notes");
  });

  it("an extra nested key, with its JSON path", () => {
    const r = refused(check(implement({ artifacts: { files_changed: [], commits: [{ sha: "a", message: "m", author: "x" }] } }), "implement"));
    expect(r.detail).toBe("/artifacts/commits/0: unknown key (allowed: sha, message)");
    const f = refused(check(review({ verdict: "BLOCKED", findings: [{ type: "major", message: "m", severity: 1 }] }), "review"));
    expect(f.reason_code).toBe(REV);
    expect(f.detail).toMatch(/^\/findings\/0: unknown key \(allowed: /);
  });

  it("a wrong enum value, naming the allowed ones but not the value", () => {
    const r = refused(check(implement({ status: "done" }), "implement"));
    expect(r.reason_code).toBe(IMPL);
    expect(r.detail).toBe('/status: is not one of "completed", "partial", "failed", "no_op", "blocked"');
    const v = refused(check(review({ verdict: "LGTM" }), "review"));
    expect(v.reason_code).toBe(REV);
    expect(v.detail).toContain('/verdict: is not one of "APPROVED"');
    expect(v.detail).not.toContain("LGTM");
    const t = refused(check(review({ verdict: "BLOCKED", findings: [{ type: "nit", message: "m" }] }), "review"));
    expect(t.detail).toContain("/findings/0/type: is not one of");
  });

  it("a wrong type, with its path", () => {
    const r = refused(check(implement({ duration_sec: "12" }), "implement"));
    expect(r.detail).toBe("/duration_sec: must be number, got string");
    const l = refused(check(review({ verdict: "BLOCKED", findings: [{ type: "major", message: "m", line: 2.5 }] }), "review"));
    expect(l.detail).toBe("/findings/0/line: must be integer, got number");
  });

  it("a missing required key, with its path", () => {
    const { artifacts: _a, ...rest } = implement();
    const r = refused(check(rest, "implement"));
    expect(r.detail).toBe("/artifacts: required key is missing");
    const { findings: _f, ...noFindings } = review();
    expect(refused(check(noFindings, "review")).detail).toBe("/findings: required key is missing");
  });

  it("a beads_id that is not the item's", () => {
    const r = refused(check(implement({ beads_id: "bd-zzzz" }), "implement"));
    expect(r.reason_code).toBe(IMPL);
    expect(r.detail).toBe('beads_id mismatch: the contract\'s beads_id is not the item id "bd-a1b2"');
  });

  it("a review contract naming the review job id instead of the item", () => {
    const r = refused(check(review({ beads_id: "bd-a1b2-review" }), "review"));
    expect(r.reason_code).toBe(REV);
    expect(r.detail).toMatch(/^beads_id mismatch: .*"bd-a1b2".*not the review job id/);
  });

  it("a contract of the other phase", () => {
    const r = refused(check(review(), "implement"));
    expect(r.reason_code).toBe(IMPL);
    expect(r.detail).toBe('phase mismatch: contract says "review", the job\'s phase is "implement"');
    const s = refused(check(implement(), "review"));
    expect(s.reason_code).toBe(REV);
    expect(s.detail).toBe('phase mismatch: contract says "implement", the job\'s phase is "review"');
  });

  it("an unknown phase value", () => {
    const r = refused(check(implement({ phase: "build" }), "implement"));
    expect(r.detail).toBe('/phase: must be "implement"');
  });

  it("a text over 1 MiB, without parsing it", () => {
    const big = JSON.stringify(implement({ summary: "x".repeat(2 * 1024 * 1024) }));
    const r = refused(check(big, "implement"));
    expect(r.reason_code).toBe(IMPL);
    expect(r.detail).toMatch(/too large/);
    // Not JSON and too large: refused for its size, which proves it was not parsed.
    expect(refused(check("{".repeat(2 * 1024 * 1024), "review")).detail).toMatch(/too large/);
    // Multi-byte characters count in bytes: 600k 'é' is 1.2 MB of UTF-8 in 600k UTF-16 units.
    const wide = JSON.stringify(implement({ summary: "é".repeat(600 * 1024) }));
    expect(wide.length).toBeLessThan(MAX_CONTRACT_BYTES);
    expect(refused(check(wide, "implement")).detail).toMatch(/too large/);
  });

  it("text that is not JSON", () => {
    const r = refused(check("CONTRACT:JSON:{oops", "review"));
    expect(r.reason_code).toBe(REV);
    expect(r.detail).toMatch(/^not JSON: /);
    expect(refused(check("", "implement")).detail).toMatch(/^not JSON: /);
  });

  it("JSON that is not an object", () => {
    expect(refused(check("[1,2]", "implement")).detail).toBe("/: must be object, got array");
    expect(refused(check("null", "review")).detail).toBe("/: must be object, got null");
  });

  it("REVISION_REQUIRED or BLOCKED with empty findings", () => {
    for (const verdict of ["REVISION_REQUIRED", "BLOCKED"]) {
      const r = refused(check(review({ verdict, findings: [] }), "review"));
      expect(r.reason_code).toBe(REV);
      expect(r.detail).toBe(`/findings: must not be empty when verdict is "${verdict}" (only APPROVED may have no findings)`);
    }
  });

  it("a timestamp that is not ISO 8601", () => {
    expect(refused(check(implement({ timestamp: "yesterday" }), "implement")).detail).toMatch(/^\/timestamp: must match/);
  });

  it("never quotes the text of a refused contract (say where and why, never what)", () => {
    const secret = "root:*:20000:0:99999:7:::";
    for (const text of [
      secret,
      `{"phase":"implement","x":"${secret}"}`,
      `{"${secret}":1}`,
      `{"phase":"implement","beads_id":"${secret}"}`,
      `{"status":"${secret}"}`,
    ]) {
      for (const phase of ["implement", "review"] as const) {
        const r = refused(check(text, phase));
        expect(r.detail).not.toContain("root");
        expect(r.detail).not.toContain("20000");
      }
    }
  });
});
