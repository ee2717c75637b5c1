import { defineConfig } from "vitest/config";

// Process-level tests spawn real agents; on 2 noisy cores they need generous timeouts, and
// running files in parallel forks keeps one test's process groups away from another's.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
  },
});
