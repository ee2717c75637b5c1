import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** Temp directories a test made; `cleanup` (the `tmp` fixture does it) removes them all. */
export class TempDirs {
  private readonly dirs: string[] = [];

  make(prefix = "dx-test-"): string {
    const d = mkdtempSync(path.join(os.tmpdir(), prefix));
    this.dirs.push(d);
    return d;
  }

  cleanup(): void {
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}
