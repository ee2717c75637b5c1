import { Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";

// What a `bd … --json` call printed, in one of the forms bd versions use:
//   - the bare payload (an array of issues for show/ready/update/close);
//   - the envelope `{schema_version, data}` of newer versions;
//   - an error object `{"error": "…", "hint"?: "…"}`, on stdout or stderr, exit 1.

const Envelope = Type.Object({ schema_version: Type.Union([Type.Number(), Type.String()]), data: Type.Unknown() });
const ErrorObject = Type.Object({ error: Type.String(), hint: Type.Optional(Type.String()) });

export type BdJson = { kind: "data"; data: unknown } | { kind: "error"; message: string } | { kind: "invalid"; detail: string };

function parseLoose(text: string): { ok: true; value: unknown } | { ok: false } {
  const trimmed = text.trim();
  if (trimmed === "") return { ok: false };
  try {
    return { ok: true, value: JSON.parse(trimmed) as unknown };
  } catch {
    // A notice line printed before the document (upgrade hints, warnings) must not hide it.
    const lines = trimmed.split("\n");
    const start = lines.findIndex((l) => l.startsWith("{") || l.startsWith("["));
    if (start <= 0) return { ok: false };
    try {
      return { ok: true, value: JSON.parse(lines.slice(start).join("\n")) as unknown };
    } catch {
      return { ok: false };
    }
  }
}

function classify(value: unknown): BdJson {
  const inner = Value.Check(Envelope, value) ? value.data : value;
  if (Value.Check(ErrorObject, inner)) {
    return { kind: "error", message: inner.hint ? `${inner.error} (hint: ${inner.hint})` : inner.error };
  }
  if (Value.Check(ErrorObject, value)) return { kind: "error", message: value.error };
  return { kind: "data", data: inner };
}

/** Read bd's JSON answer from stdout, falling back to stderr where some versions put errors. */
export function parseBdOutput(stdout: string, stderr: string): BdJson {
  const out = parseLoose(stdout);
  if (out.ok) return classify(out.value);
  const err = parseLoose(stderr);
  if (err.ok) {
    const c = classify(err.value);
    if (c.kind === "error") return c;
  }
  const shown = stdout.trim().slice(0, 200);
  return { kind: "invalid", detail: shown === "" ? "bd printed nothing on stdout" : `not JSON: ${shown}` };
}

// Matched on bd's text because bd reports these conditions only as text; the patterns are the
// messages of its embedded Dolt/SQLite storage under concurrent writers (REFERENCE §2).
const LOCK_ERROR = /database is locked|read[- ]only|\blocked\b/i;
const NOT_FOUND = /not found|no issue found|no such issue|no issues? (?:found )?matching/i;

export const isLockError = (text: string): boolean => LOCK_ERROR.test(text);
export const isNotFoundError = (text: string): boolean => NOT_FOUND.test(text);
