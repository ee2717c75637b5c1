import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { PUBLISHED_SCHEMAS } from "../../src/contract/published-schemas.js";

// The committed schemas/*.json must be exactly what the TypeBox sources produce; if this fails,
// run `npm run build && node scripts/gen-schemas.mjs` and commit the result.

const root = join(import.meta.dirname, "..", "..");
const committed = (file: string): string => readFileSync(join(root, file), "utf8");

describe("published JSON Schemas", () => {
  it("ships the three schemas", () => {
    expect(PUBLISHED_SCHEMAS.map((s) => s.file).sort()).toEqual([
      "schemas/config.schema.json",
      "schemas/implement-contract.schema.json",
      "schemas/review-contract.schema.json",
    ]);
  });

  for (const s of PUBLISHED_SCHEMAS) {
    it(`${s.file} equals what its TypeBox source produces`, () => {
      expect(committed(s.file)).toBe(s.text());
    });

    it(`${s.file} is a draft-07 schema with an $id that a stock ajv compiles`, () => {
      const doc: unknown = JSON.parse(committed(s.file));
      expect(doc).toMatchObject({ $schema: "http://json-schema.org/draft-07/schema#", $id: expect.stringMatching(/^urn:dx-batch:schema:/) });
      // A fresh, non-strict validator as a third party would use it: the files must stand alone.
      const ajv = new Ajv({ strict: false, discriminator: true });
      expect(() => ajv.compile(doc as object)).not.toThrow();
    });
  }

  it("the committed review schema alone enforces non-empty findings unless APPROVED", () => {
    const validate = new Ajv({ strict: false }).compile(JSON.parse(committed("schemas/review-contract.schema.json")) as object);
    const base = { phase: "review", beads_id: "bd-a1", timestamp: "2025-01-01T00:00:00Z" };
    expect(validate({ ...base, verdict: "APPROVED", findings: [] })).toBe(true);
    expect(validate({ ...base, verdict: "REVISION_REQUIRED", findings: [] })).toBe(false);
    expect(validate({ ...base, verdict: "REVISION_REQUIRED", findings: [{ type: "major", message: "m" }] })).toBe(true);
    expect(validate({ ...base, verdict: "APPROVED", findings: [], extra: 1 })).toBe(false);
  });

  it("every object in every schema forbids additional properties", () => {
    const offenders: string[] = [];
    const visit = (node: unknown, path: string): void => {
      if (Array.isArray(node)) return node.forEach((n, i) => visit(n, `${path}/${i}`));
      if (typeof node !== "object" || node === null) return;
      const o = node as Record<string, unknown>;
      if (o.type === "object" && (o.properties !== undefined || o.patternProperties !== undefined) && o.additionalProperties !== false) offenders.push(path);
      for (const [k, v] of Object.entries(o)) if (k !== "if" && k !== "then") visit(v, `${path}/${k}`);
    };
    for (const s of PUBLISHED_SCHEMAS) visit(JSON.parse(committed(s.file)), s.file);
    expect(offenders).toEqual([]);
  });
});
