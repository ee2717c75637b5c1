import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO } from "../helpers/build.js";
import { codexHomeOf, findCodexRollout } from "../../src/runner/codex-rollout.js";
import { LogFollower, mentionsTransient, parseStreamLine, signalsOf, usageTokens } from "../../src/runner/log-signals.js";

// The stream parsers over lines the real CLIs printed against the mocks (recorded by
// capture-streams.capture.ts). A happy implement run is 4 model calls; the mock reported 80 output
// tokens and 300 cache-read tokens per call, and 1200 input tokens: on the OpenAI and Gemini wires
// the 1200 include the cached 300, on Anthropic's they come on top (its input_tokens exclude cache
// reads), so Claude's totals are 300 per call higher.

const captured = (name: string): string => readFileSync(path.join(REPO, "test", "fixtures", "mock-models", "captured", name), "utf8");
const lineOf = (name: string, re: RegExp): string => {
  const l = captured(name)
    .split("\n")
    .find((x) => re.test(x));
  if (l === undefined) throw new Error(`no line matching ${re} in ${name}`);
  return l;
};

describe("usage from each CLI's stream", () => {
  it.each([
    ["claude-happy.log", { input_tokens: 4800, output_tokens: 320, cache_read_tokens: 1200, cost_usd: 0.01956 }, 6320],
    ["codex-happy.log", { input_tokens: 3600, output_tokens: 320, cache_read_tokens: 1200, cost_usd: null }, 5120],
    ["opencode-happy.log", { input_tokens: 3600, output_tokens: 320, cache_read_tokens: 1200, cost_usd: 0 }, 5120],
    ["gemini-happy.log", { input_tokens: 3600, output_tokens: 320, cache_read_tokens: 1200, cost_usd: null }, 5120],
  ])("%s → %j", (file, usage, tokens) => {
    const s = signalsOf(captured(file));
    expect(s.usage).toEqual(usage);
    expect(usageTokens(s.usage)).toBe(tokens);
    expect(s.quota_retries).toBe(0);
    expect(s.last_error).toBeNull();
  });

  it("Claude's live assistant messages give a running total before the result arrives", () => {
    const lines = captured("claude-happy.log").split("\n");
    const beforeResult = lines.filter((l) => !l.includes('"type":"result"')).join("\n");
    const s = signalsOf(beforeResult);
    // 4 model calls of 1200 input and 300 cache reads, and the message_start's output count of 1 each.
    expect(s.usage).toEqual({ input_tokens: 4800, output_tokens: 4, cache_read_tokens: 1200, cost_usd: null });
  });

  it.each([
    ["claude result", "claude-happy.log", /"type":"result"/, { input_tokens: 4800, output_tokens: 320, cache_read_tokens: 1200, cost_usd: 0.01956 }, "total"],
    [
      "codex turn.completed",
      "codex-happy.log",
      /turn\.completed/,
      { input_tokens: 3600, output_tokens: 320, cache_read_tokens: 1200, cost_usd: null },
      "increment",
    ],
    ["opencode step_finish", "opencode-happy.log", /step_finish/, { input_tokens: 900, output_tokens: 80, cache_read_tokens: 300, cost_usd: 0 }, "increment"],
    [
      "gemini result stats",
      "gemini-happy.log",
      /"type":"result"/,
      { input_tokens: 3600, output_tokens: 320, cache_read_tokens: 1200, cost_usd: null },
      "total",
    ],
  ])("%s: one line → usage", (_n, file, re, usage, scope) => {
    expect(parseStreamLine(lineOf(file, re))).toEqual([{ kind: "usage", scope, usage }]);
  });
});

describe("rate-limit retries in each CLI's live stream", () => {
  it.each([
    // file, retries seen before the capture ended, the CLI's own last error line
    ["claude-429.log", 7, null],
    ["codex-429.log", 5, "exceeded retry limit, last status: 429 Too Many Requests"],
    ["opencode-429.log", 1, "APIError: Rate limited by the mock (status 429)"],
  ])("%s: %i retries, last error %s", (file, retries, lastError) => {
    const s = signalsOf(captured(file));
    expect(s.quota_retries).toBe(retries);
    expect(s.last_error).toBe(lastError);
  });

  it("Gemini's plain-text retry lines count, its stack frames do not, and its final result error is the last error", () => {
    const s = signalsOf(captured("gemini-429.log"));
    const attempts = captured("gemini-429.log")
      .split("\n")
      .filter((l) => /^Attempt \d+ failed with status 429/.test(l)).length;
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(s.quota_retries).toBe(attempts);
    expect(s.last_error).toMatch(/^\[API Error: Resource has been exhausted \(e\.g\. check quota\)\.\]/);
    const beforeEnd = signalsOf(captured("gemini-429.log").split("\n").slice(0, 40).join("\n"));
    expect(beforeEnd.last_error).toMatch(/^Attempt \d+ failed with status 429\. Retrying with backoff/);
  });

  it.each([
    ["claude api_retry 429", "claude-429.log", /api_retry/],
    ["codex Reconnecting… 429", "codex-429.log", /Reconnecting/],
    ["opencode error event 429", "opencode-429.log", /"type":"error"/],
    ["gemini retry line", "gemini-429.log", /^Attempt 1 failed with status 429/],
  ])("%s is a quota retry", (_n, file, re) => {
    expect(parseStreamLine(lineOf(file, re)).map((s) => s.kind)).toContain("quota_retry");
  });

  it("a non-quota retry, a contract mentioning 429, and tool output are not quota retries", () => {
    expect(parseStreamLine('{"type":"system","subtype":"api_retry","attempt":1,"error_status":500,"error":"server_error"}')).toEqual([]);
    expect(parseStreamLine('{"type":"error","message":"Reconnecting... 1/5 (stream disconnected before completion)"}')).toEqual([]);
    expect(parseStreamLine(lineOf("codex-happy.log", /agent_message/))).toEqual([]);
    expect(parseStreamLine('{"type":"assistant","message":{"content":[{"type":"text","text":"HTTP 429 handling added"}]}}')).toEqual([]);
    expect(signalsOf(captured("gemini-happy.log")).quota_retries).toBe(0);
  });
});

describe("a CLI's transient local fault", () => {
  // What OpenCode 1.x printed (stderr, coloured) when a sibling run held its SQLite store.
  const LOCKED = "\x1b[91m\x1b[1mError: \x1b[0mUnexpected error\n\ndatabase is locked\n";

  it("OpenCode's locked store is a transient fault, and its last error line names it", () => {
    expect(mentionsTransient(captured("opencode-happy.log") + LOCKED)).toBe(true);
    expect(signalsOf(LOCKED).last_error).toBe("database is locked");
  });

  it("the same words inside a JSON event (a tool's output) are the agent's work, not the CLI's fault", () => {
    const tool = JSON.stringify({ type: "tool_use", part: { state: { output: "Error: database is locked" } } });
    expect(mentionsTransient(`${tool}\n`)).toBe(false);
    expect(mentionsTransient(captured("opencode-happy.log"))).toBe(false);
  });
});

describe("LogFollower: signals from a growing log", () => {
  it("reads only what was appended, across partial lines, and the unterminated last line at finish", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "dx-follow-"));
    try {
      const log = path.join(dir, "job.log");
      const lines = captured("codex-429.log").split("\n").filter(Boolean);
      writeFileSync(log, "");
      const f = new LogFollower(log);
      expect(f.poll()).toEqual([]);
      appendFileSync(log, `${lines.slice(0, 4).join("\n")}\n${(lines[4] ?? "").slice(0, 20)}`);
      f.poll();
      expect(f.signals.quota_retries).toBe(1);
      appendFileSync(log, `${(lines[4] ?? "").slice(20)}\n${lines.slice(5, 9).join("\n")}`);
      f.poll();
      expect(f.signals.quota_retries).toBe(5);
      expect(f.signals.last_error).toBeNull();
      f.finish();
      expect(f.signals.last_error).toBe("exceeded retry limit, last status: 429 Too Many Requests");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Codex's session rollout: usage per model call while its one turn runs", () => {
  // Two lines as Codex 0.171 wrote them against the mock (rate_limits and the rest trimmed).
  const tokenCount = (calls: number): string =>
    JSON.stringify({
      timestamp: "2026-12-02T05:19:11.907Z",
      type: "event_msg",
      payload: {
        type: "token_count",
        info: {
          total_token_usage: { input_tokens: 1200 * calls, cached_input_tokens: 300 * calls, output_tokens: 80 * calls, total_tokens: 1280 * calls },
          last_token_usage: { input_tokens: 1200, cached_input_tokens: 300, output_tokens: 80, total_tokens: 1280 },
        },
      },
    });

  it("thread.started names the session; a rollout token_count is the running total until turn.completed says more", () => {
    expect(parseStreamLine(lineOf("codex-happy.log", /thread\.started/))).toEqual([
      { kind: "codex_thread", thread_id: "01a233f0-5878-7cd3-a8cf-abbe49b9f447" },
    ]);
    const s = signalsOf(captured("codex-happy.log").split("\n").slice(0, 4).join("\n"));
    expect(s.codex_thread).toBe("01a233f0-5878-7cd3-a8cf-abbe49b9f447");
    expect(s.usage).toEqual({ input_tokens: null, output_tokens: null, cache_read_tokens: null, cost_usd: null });
    s.feed(tokenCount(1));
    s.feed(tokenCount(2));
    expect(s.usage).toEqual({ input_tokens: 1800, output_tokens: 160, cache_read_tokens: 600, cost_usd: null });
    s.feed(lineOf("codex-happy.log", /turn\.completed/));
    expect(s.usage).toEqual({ input_tokens: 3600, output_tokens: 320, cache_read_tokens: 1200, cost_usd: null });
    // Other rollout lines carry no signal, whatever text they hold.
    expect(parseStreamLine('{"type":"response_item","payload":{"type":"message","content":[{"text":"429 rate limit Error: x"}]}}')).toEqual([]);
    expect(parseStreamLine('{"type":"event_msg","payload":{"type":"error","message":"429"}}')).toEqual([]);
  });

  it("findCodexRollout finds the session's file under $CODEX_HOME/sessions/YYYY/MM/DD, and nothing before Codex wrote it", () => {
    const home = mkdtempSync(path.join(os.tmpdir(), "dx-codex-home-"));
    try {
      const thread = "01a233f0-5878-7cd3-a8cf-abbe49b9f447";
      expect(findCodexRollout(home, thread)).toBeNull();
      const day = path.join(home, "sessions", "2026", "12", "02");
      mkdirSync(day, { recursive: true });
      writeFileSync(path.join(day, "rollout-2026-12-02T05-19-11-01a23531-46ee-7e42-9420-b7e057e304dd.jsonl"), "");
      expect(findCodexRollout(home, thread)).toBeNull();
      const file = path.join(day, `rollout-2026-12-02T05-19-12-${thread}.jsonl`);
      writeFileSync(file, `${tokenCount(1)}\n`);
      expect(findCodexRollout(home, thread)).toBe(file);
      expect(codexHomeOf({ HOME: "/h" })).toBe("/h/.codex");
      expect(codexHomeOf({ HOME: "/h", CODEX_HOME: "/c" })).toBe("/c");
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
