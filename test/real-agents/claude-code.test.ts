import { describe } from "vitest";
import { happyWave } from "./happy-wave.js";
import { mustShow } from "./must-show.js";

// The real Claude Code CLI (pinned, .cache/agent-clis) against the mock Anthropic Messages API.

describe("claude-code: real Claude Code against a mock Anthropic API", () => {
  happyWave("claude", "cc");
});

describe("claude-code: what issue #11 must show, with the real CLI", () => {
  mustShow("claude", "cc");
});
