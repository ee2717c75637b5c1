import { describe } from "vitest";
import { happyWave } from "./happy-wave.js";

// The real Codex CLI (pinned, .cache/agent-clis) against the mock OpenAI Responses API.

describe("codex: real Codex against a mock Responses API", () => {
  happyWave("codex", "cx");
});
