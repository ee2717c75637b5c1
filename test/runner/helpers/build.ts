import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

// Compiles the runner and its CLI entry into a private directory inside node_modules/.cache, so
// process-level tests run real compiled code without racing other suites over dist/ and without
// depending on unrelated work-in-progress modules (tsc follows imports from the entry files only).

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

const ENTRIES = ["src/cli/runner-main.ts", "src/runner/index.ts"];

export function buildRunnerDist(): string {
  const dir = path.join(REPO, "node_modules", ".cache", "dx-batch-runner-test", `${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const tsconfig = {
    extends: path.join(REPO, "tsconfig.json"),
    compilerOptions: {
      outDir: path.join(dir, "dist"),
      rootDir: path.join(REPO, "src"),
      noEmit: false,
      declaration: false,
      sourceMap: false,
      incremental: false,
    },
    files: ENTRIES.map((e) => path.join(REPO, e)),
    include: [],
  };
  const cfg = path.join(dir, "tsconfig.json");
  writeFileSync(cfg, JSON.stringify(tsconfig));
  const tsc = path.join(REPO, "node_modules", "typescript", "bin", "tsc");
  execFileSync(process.execPath, [tsc, "-p", cfg], { cwd: REPO, stdio: "pipe" });
  return path.join(dir, "dist");
}
