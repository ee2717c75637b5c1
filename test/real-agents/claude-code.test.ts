import { describe } from "vitest";
import { happyWave } from "./happy-wave.js";

// The real Claude Code CLI (pinned, .cache/agent-clis) against the mock Anthropic Messages API.

describe("claude-code: real Claude Code against a mock Anthropic API", () => {
  happyWave("claude", "cc");
});
