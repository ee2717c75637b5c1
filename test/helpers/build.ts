import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

// One compiled copy of the CLI for every process-level test of a run. It is built into a private
// directory keyed by a hash of the sources, so the tests never race another suite (or a developer)
// rebuilding dist/ while a controller is loading it, and two vitest workers build it only once.
// DX_TEST_BIN=<path to a dx-batch.js> runs that CLI instead (a patched build, or the repo's bin).

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CACHE = path.join(REPO, "node_modules", ".cache", "dx-batch-test-cli");
const LOCK_STALE_MS = 180_000;

function sourceHash(): string {
  const h = createHash("sha256");
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(".ts")) h.update(path.relative(REPO, p)).update("\0").update(readFileSync(p)).update("\0");
    }
  };
  walk(path.join(REPO, "src"));
  // The dashboard's static files ship beside dist/ in the package (serve reads them from ../../web).
  for (const name of readdirSync(path.join(REPO, "web")).sort())
    h.update(`web/${name}`)
      .update("\0")
      .update(readFileSync(path.join(REPO, "web", name)));
  for (const f of ["package.json", "tsconfig.json", "tsconfig.build.json", "bin/dx-batch.js", "scripts/bundle.mjs"])
    h.update(f).update(readFileSync(path.join(REPO, f)));
  return h.digest("hex").slice(0, 16);
}

const sleepSync = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Take `<dir>.lock` (a directory); a lock older than LOCK_STALE_MS belongs to a dead build. */
function lockBuild(lock: string, ready: string): boolean {
  const deadline = Date.now() + LOCK_STALE_MS;
  for (;;) {
    try {
      mkdirSync(lock);
      return true;
    } catch {
      if (existsSync(ready)) return false;
      let age = 0;
      try {
        age = Date.now() - statSync(lock).mtimeMs;
      } catch {
        continue;
      }
      if (age > LOCK_STALE_MS || Date.now() > deadline) rmSync(lock, { recursive: true, force: true });
      else sleepSync(200);
    }
  }
}

/** Build (or reuse) the compiled CLI, laid out like the package (bin/, dist/, web/, package.json); returns its bin/dx-batch.js. */
export function buildCli(): string {
  const given = process.env.DX_TEST_BIN;
  if (given !== undefined && given !== "") return path.resolve(given);
  const dir = path.join(CACHE, sourceHash());
  const bin = path.join(dir, "bin", "dx-batch.js");
  const ready = path.join(dir, "READY");
  if (existsSync(ready)) return bin;
  mkdirSync(CACHE, { recursive: true });
  const lock = `${dir}.lock`;
  if (!lockBuild(lock, ready)) return bin;
  try {
    if (existsSync(ready)) return bin;
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    const tsc = path.join(REPO, "node_modules", "typescript", "bin", "tsc");
    try {
      execFileSync(
        process.execPath,
        [tsc, "-p", path.join(REPO, "tsconfig.build.json"), "--outDir", path.join(tmp, "dist"), "--declaration", "false", "--sourceMap", "false"],
        {
          cwd: REPO,
          stdio: "pipe",
          encoding: "utf8",
        },
      );
      // The bundle bin/dx-batch.js runs, as `npm run build` makes it.
      execFileSync(process.execPath, [path.join(REPO, "scripts", "bundle.mjs"), path.join(tmp, "dist")], { cwd: REPO, stdio: "pipe", encoding: "utf8" });
    } catch (e) {
      const out = e instanceof Error && "stdout" in e ? `${String(e.stdout)}${"stderr" in e ? String(e.stderr) : ""}` : "";
      throw new Error(`the test build of src/ failed (tsc -p tsconfig.build.json, then scripts/bundle.mjs):\n${out}`);
    }
    // The layout the compiled code expects around it: bin/ (detach re-runs it), web/ (serve's
    // dashboard) and package.json. Copied before the rename, so no reader sees a half-made tree.
    mkdirSync(path.join(tmp, "bin"));
    cpSync(path.join(REPO, "web"), path.join(tmp, "web"), { recursive: true });
    copyFileSync(path.join(REPO, "bin", "dx-batch.js"), path.join(tmp, "bin", "dx-batch.js"));
    copyFileSync(path.join(REPO, "package.json"), path.join(tmp, "package.json"));
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    writeFileSync(ready, new Date().toISOString());
    return bin;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
