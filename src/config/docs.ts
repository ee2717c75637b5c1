import { ROOT_DEFAULT_DOCS } from "./defaults.js";
import { configDocument } from "./schema.js";

// The README's configuration reference, generated from the schema so the two cannot disagree.

/** Defaults that depend on the machine and so cannot be a `default` annotation in the schema. */
const MACHINE_DEFAULTS: Record<string, string> = {
  tracker: '`{"type":"beads"}` if `bd` is on PATH, else `{"type":"none"}`',
  ...ROOT_DEFAULT_DOCS,
};

interface Row {
  key: string;
  type: string;
  dflt: string;
  description: string;
}

export function renderConfigReference(): string {
  const rows: Row[] = [];
  const doc = configDocument();
  for (const [key, schema] of entries(doc.properties)) {
    if (key === "$schema") continue;
    walk(key, schema, rows);
  }
  const head = "| key | type | default | description |\n|---|---|---|---|\n";
  return head + rows.map((r) => `| ${cell(`\`${r.key}\``)} | ${cell(r.type)} | ${cell(r.dflt)} | ${cell(r.description)} |`).join("\n") + "\n";
}

function walk(key: string, schema: unknown, rows: Row[], note = ""): void {
  const s = asObject(schema);
  const dflt = MACHINE_DEFAULTS[key] ?? ("default" in s ? `\`${JSON.stringify(s.default)}\`` : "");
  rows.push({ key, type: typeName(s), dflt, description: note + (typeof s.description === "string" ? s.description : "") });

  if (Array.isArray(s.oneOf)) {
    const variants = s.oneOf.map(asObject);
    const tags = variants.map((v) => asObject(asObject(v.properties).type));
    rows.push({
      key: `${key}.type`,
      type: tags.map((t) => JSON.stringify(t.const)).join(" | "),
      dflt: "",
      description: tags.map((t) => `\`${JSON.stringify(t.const)}\`: ${typeof t.description === "string" ? t.description : ""}`).join("; "),
    });
    for (const [i, v] of variants.entries()) {
      for (const [child, cs] of entries(v.properties)) {
        if (child !== "type") walk(`${key}.${child}`, cs, rows, `(type ${JSON.stringify(asObject(tags[i]).const)}) `);
      }
    }
    return;
  }
  if (s.properties !== undefined) {
    for (const [child, cs] of entries(s.properties)) walk(`${key}.${child}`, cs, rows);
    return;
  }
  const patterned = Object.values(asObject(s.patternProperties))[0];
  const value = asObject(patterned);
  if (value.properties !== undefined) {
    for (const [child, cs] of entries(value.properties)) walk(`${key}.<name>.${child}`, cs, rows);
  }
}

function typeName(s: Record<string, unknown>): string {
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if ("const" in s) return JSON.stringify(s.const);
  if (Array.isArray(s.oneOf)) return "object";
  if (Array.isArray(s.type)) return s.type.map(String).join(" | ");
  switch (s.type) {
    case "array":
      return `${typeName(asObject(s.items))}[]${typeof s.minItems === "number" && s.minItems > 0 ? " (non-empty)" : ""}`;
    case "integer":
    case "number":
      return typeof s.minimum === "number" ? `${s.type} >= ${s.minimum}` : s.type;
    case "object": {
      const patterned = Object.values(asObject(s.patternProperties))[0];
      if (patterned !== undefined) {
        const v = asObject(patterned);
        return `{ [name]: ${v.properties !== undefined ? "object" : typeName(v)} }`;
      }
      return "object";
    }
    default:
      return typeof s.type === "string" ? s.type : "any";
  }
}

function asObject(v: unknown): Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? Object.fromEntries(Object.entries(v)) : {};
}

function entries(v: unknown): [string, unknown][] {
  return Object.entries(asObject(v));
}

const cell = (text: string): string => text.replace(/\|/g, "\\|").replace(/\n/g, " ");
