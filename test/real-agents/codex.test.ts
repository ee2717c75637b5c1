import { describe } from "vitest";
import { happyWave } from "./happy-wave.js";
import { mustShow } from "./must-show.js";

// The real Codex CLI (pinned, .cache/agent-clis) against the mock OpenAI Responses API.

describe("codex: real Codex against a mock Responses API", () => {
  happyWave("codex", "cx");
});

describe("codex: what issue #11 must show, with the real CLI", () => {
  mustShow("codex", "cx");
});
