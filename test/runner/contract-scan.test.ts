import { closeSync, openSync, writeFileSync, writeSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MAX_CONTRACT_BYTES, scanLogForContract, scanTextForContract } from "../../src/runner/contract-scan.js";
import { readContractSource } from "../../src/runner/contract-source.js";
import { mentionsQuota } from "../../src/runner/log-signals.js";
import { cleanup, tempDir } from "./helpers/env.js";

afterEach(cleanup);

const C = { phase: "implement", beads_id: "bd-1", status: "completed", summary: "two\nlines", artifacts: { files_changed: [], commits: [] } };
const CJ = JSON.stringify(C);
const line = (o: unknown): string => JSON.stringify(o);

const found = (text: string): unknown => {
  const r = scanTextForContract(text);
  return r.kind === "found" ? JSON.parse(r.text) : r.kind;
};

describe("CONTRACT:JSON: in plain text", () => {
  it("takes the last marker line", () => {
    expect(found(`noise\nCONTRACT:JSON:{"phase":"old"}\nmore\nCONTRACT:JSON:${CJ}\ntrailing`)).toEqual(C);
  });

  it("reads a pretty-printed contract spanning lines, even when some lines parse as JSON", () => {
    const text = ["start", "CONTRACT:JSON: {", '  "phase": "implement",', '  "findings": [', '{"type": "minor", "message": "x"}', "  ]", "}", "end"].join("\n");
    expect(found(text)).toEqual({ phase: "implement", findings: [{ type: "minor", message: "x" }] });
  });

  it("a broken earlier contract does not swallow a later good one", () => {
    expect(found(`CONTRACT:JSON:{"phase": "implement", "oops": [\nCONTRACT:JSON:${CJ}\n`)).toEqual(C);
  });

  it("reports none without a marker, and the raw rest of the line for a non-JSON marker", () => {
    expect(found("nothing here\n")).toBe("none");
    const r = scanTextForContract("CONTRACT:JSON: see the file\n");
    expect(r).toEqual({ kind: "found", text: "see the file" });
  });
});

describe("CONTRACT:JSON: inside agent event streams", () => {
  const inText = `Done.\nCONTRACT:JSON:${CJ}\nBye`;
  const decoy = 'Use CONTRACT:JSON:{"phase":"example"}';

  it("Claude Code stream-json: assistant text and result, never tool results", () => {
    const log = [
      line({ type: "system", subtype: "init", session_id: "s" }),
      line({ type: "assistant", message: { content: [{ type: "text", text: inText }] } }),
      line({ type: "user", message: { content: [{ type: "tool_result", content: decoy }] } }),
    ].join("\n");
    expect(found(log)).toEqual(C);
  });

  it("OpenCode --format json: text parts, never tool output", () => {
    const log = [
      line({ type: "text", part: { type: "text", text: inText } }),
      line({ type: "tool_use", part: { type: "tool", state: { output: decoy } } }),
    ].join("\n");
    expect(found(log)).toEqual(C);
  });

  it("Codex --json: agent messages, never command output", () => {
    const log = [
      line({ type: "item.completed", item: { type: "agent_message", text: inText } }),
      line({ type: "item.completed", item: { type: "command_execution", aggregated_output: decoy } }),
    ].join("\n");
    expect(found(log)).toEqual(C);
  });

  it("Gemini stream-json: assistant deltas joined across events, the echoed user prompt ignored", () => {
    const full = `ok\nCONTRACT:JSON:${CJ}\n`;
    const cut = [9, 17, 40, 41, 80];
    const parts = cut.reduce<{ out: string[]; at: number }>((acc, c) => ({ out: [...acc.out, full.slice(acc.at, c)], at: c }), { out: [], at: 0 });
    const deltas = [...parts.out, full.slice(80)].map((content) => line({ type: "message", role: "assistant", content, delta: true }));
    const log = [line({ type: "message", role: "user", content: decoy }), ...deltas, line({ type: "message", role: "user", content: decoy })].join("\n");
    expect(found(log)).toEqual(C);
  });

  it("an unknown JSON-lines format is searched in all its strings", () => {
    expect(found(line({ kind: "out", payload: { lines: ["a", inText] } }))).toEqual(C);
  });

  it("a plain-text contract after the stream is the last one", () => {
    const log = [line({ type: "text", part: { type: "text", text: `CONTRACT:JSON:{"phase":"early"}` } }), `CONTRACT:JSON:${CJ}`].join("\n");
    expect(found(log)).toEqual(C);
  });
});

describe("limits", () => {
  it("a contract over 1 MiB is refused as contract_too_large", () => {
    const big = JSON.stringify({ phase: "implement", pad: "x".repeat(MAX_CONTRACT_BYTES) });
    expect(scanTextForContract(`CONTRACT:JSON:${big}\n`).kind).toBe("too_large");
  });

  it("the contract file over 1 MiB is refused without reading it; an empty one falls back to the log", async () => {
    const d = tempDir();
    const file = path.join(d, "c.json");
    const log = path.join(d, "job.log");
    writeFileSync(log, `CONTRACT:JSON:${CJ}\n`);
    writeFileSync(file, "x".repeat(MAX_CONTRACT_BYTES + 1));
    expect(await readContractSource(file, log)).toMatchObject({ found: false, reason_code: "contract_too_large" });
    writeFileSync(file, "  \n");
    expect(await readContractSource(file, log)).toMatchObject({ found: true, source: "log" });
    expect(await readContractSource(path.join(d, "none.json"), path.join(d, "none.log"))).toMatchObject({ found: false, reason_code: "contract_missing" });
  });

  it("streams a 60 MB log (with a 20 MB single line) in bounded memory and finds the contract at its end", async () => {
    const d = tempDir();
    const log = path.join(d, "big.log");
    const fd = openSync(log, "w");
    const chunk = Buffer.alloc(1024 * 1024, "y");
    for (let i = 0; i < 20; i++) writeSync(fd, chunk);
    writeSync(fd, "\n");
    const lines = Buffer.from(`${line({ type: "assistant", message: { content: [{ type: "text", text: "CONTRACT almost" }] } })}\n`.repeat(4000));
    for (let i = 0; i < 40; i++) writeSync(fd, Buffer.alloc(1024 * 1024, "z\n"));
    for (let i = 0; i < 10; i++) writeSync(fd, lines);
    writeSync(fd, `${line({ type: "result", result: `CONTRACT:JSON:${CJ}` })}\n`);
    closeSync(fd);
    global.gc?.();
    const before = process.memoryUsage();
    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers)), 5);
    const r = await scanLogForContract(log);
    clearInterval(timer);
    expect(r.kind === "found" && JSON.parse(r.text)).toEqual(C);
    expect(peak - (before.heapUsed + before.arrayBuffers)).toBeLessThan(48 * 1024 * 1024);
  });
});

describe("quota detection", () => {
  it("recognises 429, rate limits, quotas and exhausted capacity, not ordinary failures", () => {
    for (const t of [
      "HTTP 429",
      "Rate limit reached",
      "rate_limit_error",
      "quota exceeded",
      "capacity exhausted",
      "RESOURCE_EXHAUSTED",
      "Claude usage limit reached",
    ])
      expect(mentionsQuota(t), t).toBe(true);
    for (const t of ["TypeError: x is undefined", "exit status 1", "port 4290 in use"]) expect(mentionsQuota(t), t).toBe(false);
  });
});
