import { afterAll, test as base } from "vitest";
import { buildCli } from "./build.js";
import { killAllChildren } from "./procs.js";
import { TempDirs } from "./tmp.js";
import { cleanupAll } from "./world.js";

// The vitest fixtures every suite uses instead of its own beforeAll/afterEach blocks. Import `it`
// (or `test`) from here: after each test the fixtures kill every process group the test spawned
// (CLI, controllers, agents), tear down its E2E worlds and remove its temp directories, whether
// the test asked for them or not. `bin`, the compiled CLI, is built once per worker.
//
// `tmp` is also exported for module-level helpers of a test file (`const layout = () =>
// createLayout(tmp.make())`); the fixture cleans the same instance.

export const tmp = new TempDirs();

/**
 * Temp directories that last the whole file (made in a beforeAll). This module is evaluated once
 * per test file (vitest isolates files), so the hook below belongs to the importing file.
 */
export const fileTmp = new TempDirs();
afterAll(() => fileTmp.cleanup());

interface Fixtures {
  /** bin/dx-batch.js of the compiled CLI (test/helpers/build.ts), built once per worker. */
  bin: string;
  /** Temp directories removed after the test. */
  tmp: TempDirs;
  /** Auto: kills what the test spawned and removes what it made. */
  cleanup: undefined;
}

// vitest reads which fixtures a function wants from its first parameter's pattern: hence `{}`.
export const test = base.extend<Fixtures>({
  bin: [
    async ({}, use) => {
      await use(buildCli());
    },
    { scope: "worker" },
  ],
  tmp: async ({}, use) => {
    await use(tmp);
  },
  cleanup: [
    async ({}, use) => {
      await use(undefined);
      await killAllChildren();
      await cleanupAll();
      tmp.cleanup();
    },
    { auto: true },
  ],
});

export const it = test;
