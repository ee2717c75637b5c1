import { createRequire } from "node:module";
import type { Ajv, Options, ValidateFunction } from "ajv";
import { Type, type TSchema, type TUnsafe, type Static, type SchemaOptions } from "@sinclair/typebox";

export { describeAjvError, pointerSegment, type DescribedError } from "./ajv-errors.js";

// Small TypeBox helpers shared by the contract and config schemas. They exist to keep the
// published JSON Schema plain (`enum`, `type: [..., "null"]`, `oneOf` + `discriminator`) so that
// any validator reads it and ajv's errors point at one value, not at every branch of an anyOf.

export const JSON_SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema#";

/** A string enum as `{type: "string", enum: [...]}` instead of TypeBox's anyOf of literals. */
export function StringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, type: "string", enum: [...values] });
}

/** `T | null` as `type: [T, "null"]`, for scalar schemas that carry a single `type`. */
export function Nullable<S extends TSchema & { type: string }>(schema: S, options: SchemaOptions = {}): TUnsafe<Static<S> | null> {
  const { type, ...rest } = schema;
  return Type.Unsafe<Static<S> | null>({ ...rest, ...options, type: [type, "null"] });
}

/**
 * A union of objects told apart by their `type` property, emitted as `oneOf` with an OpenAPI-style
 * `discriminator` (ajv understands it; other validators ignore the keyword and still apply oneOf).
 */
export function TaggedUnion<const U extends readonly TSchema[]>(variants: U, options: SchemaOptions = {}): TUnsafe<Static<U[number]>> {
  return Type.Unsafe<Static<U[number]>>({ ...options, type: "object", discriminator: { propertyName: "type" }, oneOf: [...variants] });
}

/** The JSON document shipped under schemas/: draft-07, with `$id` and `title` first. */
export function schemaDocument(schema: TSchema, meta: { id: string; title: string }): Record<string, unknown> {
  // JSON round trip drops TypeBox's symbol-keyed metadata, leaving plain JSON Schema.
  const plain: unknown = JSON.parse(JSON.stringify(schema));
  if (typeof plain !== "object" || plain === null) throw new Error("schema is not an object");
  // Readers look for the shape first, the conditional rules (if/then) after it.
  const first = ["description", "type", "required", "properties", "additionalProperties"];
  const ordered: Record<string, unknown> = {};
  for (const k of first) if (k in plain) ordered[k] = Reflect.get(plain, k) as unknown;
  for (const [k, v] of Object.entries(plain)) if (!(k in ordered)) ordered[k] = v;
  return { $schema: JSON_SCHEMA_DRAFT, $id: meta.id, title: meta.title, ...ordered };
}

/** The exact text of a file under schemas/: what the no-drift test and the generator compare. */
export const renderSchemaFile = (doc: Record<string, unknown>): string => `${JSON.stringify(doc, null, 2)}\n`;

// ajv is loaded on the first compile, not on import: a command that validates nothing, or only
// through a precompiled validator, never pays for it (CLI start-up, see src/cli/main.ts). It is
// CommonJS, so `require` loads it synchronously where compileDocument is called.
const requireCjs = createRequire(import.meta.url);

/** The options of every validator of the package: strict, first error only, errors carry their schema. */
const AJV_OPTIONS: Options = { strict: true, allErrors: false, verbose: true, allowUnionTypes: true, discriminator: true };

function newAjv(extra: Options = {}): Ajv {
  const { Ajv: AjvClass } = requireCjs("ajv") as typeof import("ajv");
  return new AjvClass({ ...AJV_OPTIONS, ...extra });
}

/** One ajv instance for every schema compiled at run time. */
let shared: Ajv | undefined;
function ajv(): Ajv {
  shared ??= newAjv();
  return shared;
}

/** Compile once (on the first call); later calls with the same document return the cached validator. */
export function compileDocument<T>(doc: Record<string, unknown>): ValidateFunction<T> {
  const id = doc.$id;
  if (typeof id === "string") {
    const existing = ajv().getSchema<T>(id);
    if (existing !== undefined) return existing;
  }
  return ajv().compile<T>(doc);
}

/**
 * The source of a TypeScript module exporting `doc` precompiled (ajv standalone code, same options
 * as compileDocument, so the same checks and the same error objects) as `export const <name>`.
 * Loading it costs a few ms where compiling costs about a hundred. scripts/gen-schemas.mjs writes it;
 * a test fails when the committed file drifts from `doc` or from the installed ajv.
 */
export function standaloneModule(doc: Record<string, unknown>, o: { name: string; source: string }): string {
  const gen = newAjv({ code: { source: true, esm: true, lines: true } });
  const validate = gen.compile(doc);
  const { default: standaloneCode } = requireCjs("ajv/dist/standalone") as typeof import("ajv/dist/standalone/index.js");
  const { version } = requireCjs("ajv/package.json") as { version: string };
  const body = standaloneCode(gen, validate)
    .replace(/^"use strict";\n?/, "")
    .replace(/^export (const validate|default) .*$\n?/gm, "");
  const entry = /^function (validate\d+)\(/m.exec(body)?.[1];
  if (entry === undefined) throw new Error("ajv standalone code has no validate function");
  return [
    "/* eslint-disable */",
    "// @ts-nocheck",
    `// Generated by scripts/gen-schemas.mjs from ${o.source} with ajv ${version} (standalone code): do not edit.`,
    "// Run `npm run build && node scripts/gen-schemas.mjs` after changing the schema or upgrading ajv.",
    'import type { ValidateFunction } from "ajv";',
    'import { createRequire } from "node:module";',
    "",
    "// ajv's ESM output still `require`s its runtime helpers (ucs2length, equal, …).",
    "const require = createRequire(import.meta.url);",
    "",
    body.trimEnd(),
    "",
    `export const ${o.name} = ${entry} as unknown as ValidateFunction<unknown>;`,
    "",
  ].join("\n");
}
