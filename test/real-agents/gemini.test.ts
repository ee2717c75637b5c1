import { describe } from "vitest";
import { happyWave } from "./happy-wave.js";

// The real Gemini CLI (pinned, .cache/agent-clis) against a mock Gemini streaming API.

describe("gemini: real Gemini CLI against a mock Gemini API", () => {
  happyWave("gemini", "gm");
});
