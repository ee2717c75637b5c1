import { describe } from "vitest";
import { happyWave } from "./happy-wave.js";

// The real OpenCode CLI (pinned, .cache/agent-clis) against a mock OpenAI Chat Completions API,
// configured as an OpenCode custom provider.

describe("opencode: real OpenCode against a mock Chat Completions API", () => {
  happyWave("opencode", "oc");
});
