import type { ErrorObject } from "ajv";

// ajv's first error as one line a person can act on. Apart from kit.ts so that a caller holding a
// precompiled validator (src/config/validator.generated.ts) reads errors without loading ajv.

/** RFC 6901 escaping of one path segment. */
export const pointerSegment = (key: string): string => key.replace(/~/g, "~0").replace(/\//g, "~1");

/**
 * One-line description of the first ajv error: `{path, problem}`. The path names the bad value
 * itself (an unknown key's own path, a missing key's own path); `unknownKey` flags the
 * additionalProperties case so callers can pick a different reason code.
 */
export interface DescribedError {
  path: string;
  problem: string;
  unknownKey: boolean;
  /** The keys the enclosing object schema allows, when that is known (for "allowed keys" hints). */
  parentKeys: string[] | null;
  /** The `description` of the bad value's schema, when it has one (for remedies). */
  description: string | null;
}

export function describeAjvError(errors: readonly ErrorObject[] | null | undefined, opts: { quoteData?: boolean } = {}): DescribedError {
  const e = pickError(errors ?? []);
  if (e !== undefined && opts.quoteData === false) return describeBlind(e);
  if (e === undefined) return { path: "/", problem: "is invalid", unknownKey: false, parentKeys: null, description: null };
  const at = e.instancePath;
  const here = at || "/";
  const parentKeys = keysOf(e.parentSchema);
  const own = descriptionOf(e.parentSchema);
  const p = e.params as Record<string, unknown>;
  const result = (path: string, problem: string, description: string | null = own, unknownKey = false): DescribedError => ({
    path,
    problem,
    unknownKey,
    parentKeys,
    description,
  });
  // Errors inside `propertyNames` are about a key, not a value: name the key.
  if (e.propertyName !== undefined) return result(here, `key ${JSON.stringify(e.propertyName)} is not a valid name (${e.message ?? "invalid"})`);
  switch (e.keyword) {
    case "additionalProperties":
      return result(`${at}/${pointerSegment(String(p.additionalProperty))}`, "unknown key", null, true);
    case "required": {
      const key = String(p.missingProperty);
      return result(`${at}/${pointerSegment(key)}`, "required key is missing", descriptionOf(propertySchema(e.parentSchema, key)));
    }
    case "enum": {
      const allowed = Array.isArray(p.allowedValues) ? p.allowedValues.map((v) => JSON.stringify(v)).join(", ") : "";
      return result(here, `${JSON.stringify(e.data)} is not one of ${allowed}`);
    }
    case "const":
      return result(here, `${JSON.stringify(e.data)} must be ${JSON.stringify(p.allowedValue)}`);
    case "discriminator": {
      const variants = discriminatorValues(e.parentSchema);
      const tagPath = `${at}/${pointerSegment(String(p.tag))}`;
      if (p.error === "tag" && p.tagValue === undefined) return result(tagPath, `required key is missing (one of ${variants})`);
      return result(tagPath, `${JSON.stringify(p.tagValue)} is not one of ${variants}`);
    }
    case "propertyNames":
      return result(here, `key ${JSON.stringify(p.propertyName)} is not a valid name`);
    case "pattern":
      return result(here, `${JSON.stringify(e.data)} must match ${String(p.pattern)}`);
    case "type":
      return result(here, `must be ${String(p.type).replace(/,/g, " or ")}, got ${jsonTypeOf(e.data)}`);
    default:
      return result(here, e.message ?? "is invalid");
  }
}

/**
 * The same description without a byte of the value: for input that may be hostile (an agent's
 * contract file can be a link to a secret), say where and why, never what (issue #10). An
 * unknown key is reported at its object, with the keys allowed there, not by its own name.
 */
function describeBlind(e: ErrorObject): DescribedError {
  const at = e.instancePath;
  const here = at || "/";
  const parentKeys = keysOf(e.parentSchema);
  const p = e.params as Record<string, unknown>;
  const result = (path: string, problem: string, unknownKey = false): DescribedError => ({
    path,
    problem,
    unknownKey,
    parentKeys,
    description: descriptionOf(e.parentSchema),
  });
  switch (e.keyword) {
    case "additionalProperties":
      return result(here, `unknown key${parentKeys === null ? "" : ` (allowed: ${parentKeys.join(", ")})`}`, true);
    case "required": {
      const key = String(p.missingProperty);
      return result(`${at}/${pointerSegment(key)}`, "required key is missing");
    }
    case "enum":
      return result(here, `is not one of ${Array.isArray(p.allowedValues) ? p.allowedValues.map((v) => JSON.stringify(v)).join(", ") : "the allowed values"}`);
    case "const":
      return result(here, `must be ${JSON.stringify(p.allowedValue)}`);
    case "discriminator":
      return result(`${at}/${pointerSegment(String(p.tag))}`, `is missing or not one of ${discriminatorValues(e.parentSchema)}`);
    case "propertyNames":
      return result(here, "has a key that is not a valid name");
    case "pattern":
      return result(here, `must match ${String(p.pattern)}`);
    case "type":
      return result(here, `must be ${String(p.type).replace(/,/g, " or ")}, got ${jsonTypeOf(e.data)}`);
    default:
      return result(here, e.message ?? "is invalid");
  }
}

// Errors produced by the combinator itself ("must match then schema", "must match exactly one
// schema") say less than the error of the value underneath, which ajv reports first.
const COMBINATOR_KEYWORDS = new Set(["if", "oneOf", "anyOf", "allOf", "not"]);
function pickError(errors: readonly ErrorObject[]): ErrorObject | undefined {
  return errors.find((e) => !COMBINATOR_KEYWORDS.has(e.keyword)) ?? errors[0];
}

function keysOf(schema: unknown): string[] | null {
  if (typeof schema !== "object" || schema === null || !("properties" in schema)) return null;
  const props = schema.properties;
  return typeof props === "object" && props !== null ? Object.keys(props) : null;
}

function propertySchema(schema: unknown, key: string): unknown {
  if (typeof schema !== "object" || schema === null || !("properties" in schema)) return undefined;
  const props: unknown = schema.properties;
  return typeof props === "object" && props !== null ? (Reflect.get(props, key) as unknown) : undefined;
}

function descriptionOf(schema: unknown): string | null {
  return typeof schema === "object" && schema !== null && "description" in schema && typeof schema.description === "string" ? schema.description : null;
}

function discriminatorValues(schema: unknown): string {
  if (typeof schema !== "object" || schema === null || !("oneOf" in schema) || !Array.isArray(schema.oneOf)) return "the known types";
  const values: string[] = [];
  for (const v of schema.oneOf as unknown[]) {
    const tag: unknown =
      typeof v === "object" && v !== null && "properties" in v && typeof v.properties === "object" && v.properties !== null && "type" in v.properties
        ? v.properties.type
        : undefined;
    if (typeof tag === "object" && tag !== null && "const" in tag) values.push(JSON.stringify(tag.const));
  }
  return values.join(", ");
}

function jsonTypeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}
