import { createHash } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { expect } from "vitest";
import { spawnNode, waitExit, type CliResult } from "./procs.js";
import { cleanEnv } from "./world.js";

// The CLI as a command run to its end, and what the tests assert about its refusals and about
// a tree it must leave untouched.

/** `dx-batch …args` run to its end in a clean environment (no DX_BATCH_* of the caller's shell). */
export async function runCli(
  bin: string,
  args: readonly string[],
  o: { cwd: string; env?: Record<string, string>; timeoutMs?: number; uid?: number; gid?: number },
): Promise<CliResult> {
  const p = spawnNode(bin, args, { cwd: o.cwd, env: cleanEnv(o.env), uid: o.uid, gid: o.gid });
  return waitExit(p, o.timeoutMs ?? 120_000, `dx-batch ${args.join(" ")}`);
}

/**
 * SPEC §2 refusal: a non-zero exit, stderr of exactly `error: <code>: <message>` and at most one
 * `remedy:` line, no stack trace. Returns the message.
 */
export function expectRefusal(r: CliResult, code: string, exit = 1): string {
  expect(r.code, `exit code; stderr: ${r.stderr}`).toBe(exit);
  const lines = r.stderr.split("\n").filter((l) => l.length > 0);
  expect(lines.length, r.stderr).toBeGreaterThanOrEqual(1);
  expect(lines.length, r.stderr).toBeLessThanOrEqual(2);
  const first = lines[0] ?? "";
  expect(first.startsWith(`error: ${code}: `), r.stderr).toBe(true);
  if (lines.length === 2) expect(lines[1]?.startsWith("remedy: "), r.stderr).toBe(true);
  expect(r.stderr).not.toMatch(/^\s+at .+\(.*:\d+:\d+\)|^\s+at file:|node:internal/m);
  return first.slice(`error: ${code}: `.length);
}

/** relative path -> kind, size, mode and mtime (and a hash of each file): what "nothing written" compares. */
export function treeState(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(root)) return out;
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const st = lstatSync(p);
      const rel = path.relative(root, p);
      const kind = st.isDirectory() ? "d" : st.isFile() ? "f" : "o";
      out[rel] = `${kind} size=${kind === "d" ? "-" : st.size} mode=${(st.mode & 0o7777).toString(8)} mtime=${st.mtimeMs}`;
      if (kind === "f") out[rel] += ` sha=${createHash("sha256").update(readFileSync(p)).digest("hex").slice(0, 16)}`;
      if (st.isDirectory()) walk(p);
    }
  };
  walk(root);
  out["."] = `d mtime=${lstatSync(root).mtimeMs}`;
  return out;
}
