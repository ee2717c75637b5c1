import { defineConfig } from "vitest/config";

// Only the stream capture tool (capture-streams.capture.ts), never part of `npm test`.
export default defineConfig({
  test: { include: ["test/real-agents/*.capture.ts"], testTimeout: 300_000, hookTimeout: 1_200_000, pool: "forks", maxWorkers: 1 },
});
