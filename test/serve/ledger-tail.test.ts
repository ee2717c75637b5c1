import { appendFileSync, mkdirSync, renameSync, truncateSync, writeFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { isLoopbackHost, tokenMatches } from "../../src/serve/auth.js";
import { checkBind, segments } from "../../src/serve/server.js";
import { createLayout } from "../../src/store/layout.js";
import { LedgerTail } from "../../src/serve/ledger-tail.js";
import { TempDirs } from "../helpers/tmp.js";

// The incremental ledger reader behind SSE, metrics and spans: complete lines only, each seq once,
// in order across files, a gap held back until it fills (or is given up on).

const tmp = new TempDirs();
afterAll(() => tmp.cleanup());

const line = (seq: number, event = "x", extra: Record<string, unknown> = {}) => `${JSON.stringify({ seq, at: "2026-01-01T00:00:00.000Z", event, ...extra })}\n`;

function wave() {
  const layout = createLayout(tmp.make("dx-tail-"));
  mkdirSync(layout.itemLedgersDir("w"), { recursive: true });
  mkdirSync(layout.waveDir("w"), { recursive: true });
  return { layout, waveLedger: layout.waveLedger("w"), item: (id: string) => layout.itemLedger("w", id) };
}

describe("LedgerTail", () => {
  it("merges the wave and item ledgers in seq order, and reads only what is new", () => {
    const w = wave();
    writeFileSync(w.waveLedger, line(1) + line(2) + line(5));
    writeFileSync(w.item("bd-a1"), line(3) + line(6));
    writeFileSync(w.item("bd-b2"), line(4));
    const t = new LedgerTail(w.layout, "w");
    expect(t.read().map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(t.read()).toEqual([]);
    appendFileSync(w.item("bd-b2"), line(7));
    expect(t.read().map((e) => e.seq)).toEqual([7]);
  });

  it("leaves a line being written for the next read", () => {
    const w = wave();
    writeFileSync(w.waveLedger, line(1) + line(2).slice(0, 10));
    const t = new LedgerTail(w.layout, "w");
    expect(t.read().map((e) => e.seq)).toEqual([1]);
    appendFileSync(w.waveLedger, line(2).slice(10));
    expect(t.read().map((e) => e.seq)).toEqual([2]);
  });

  it("holds events behind a gap until the missing seq appears in another file", () => {
    let now = 0;
    const w = wave();
    writeFileSync(w.waveLedger, line(1) + line(3));
    const t = new LedgerTail(w.layout, "w", { now: () => now, gapGraceMs: 1000 });
    expect(t.read().map((e) => e.seq)).toEqual([1]);
    expect(t.waiting).toBe(true);
    now = 500;
    writeFileSync(w.item("bd-a1"), line(2));
    expect(t.read().map((e) => e.seq)).toEqual([2, 3]);
    expect(t.waiting).toBe(false);
  });

  it("gives up on a seq that never comes, after the grace period", () => {
    let now = 0;
    const w = wave();
    writeFileSync(w.waveLedger, line(1) + line(3) + line(4));
    const t = new LedgerTail(w.layout, "w", { now: () => now, gapGraceMs: 1000 });
    expect(t.read().map((e) => e.seq)).toEqual([1]);
    now = 999;
    expect(t.read()).toEqual([]);
    now = 1000;
    expect(t.read().map((e) => e.seq)).toEqual([3, 4]);
  });

  it("resumes after a given seq, skips lines that are not events, and re-reads a file cut shorter", () => {
    const w = wave();
    writeFileSync(w.waveLedger, line(1) + "not json\n" + line(2) + line(3));
    const t = new LedgerTail(w.layout, "w", { afterSeq: 2 });
    expect(t.read().map((e) => e.seq)).toEqual([3]);
    // Replaced by a new file (a new inode), longer than before.
    writeFileSync(`${w.waveLedger}.new`, line(1) + line(2) + line(3) + line(4) + line(5, "x", { pad: "p".repeat(100) }));
    renameSync(`${w.waveLedger}.new`, w.waveLedger);
    expect(t.read().map((e) => e.seq)).toEqual([4, 5]);
    // Cut shorter in place, then appended to.
    truncateSync(w.waveLedger, line(1).length);
    appendFileSync(w.waveLedger, line(6));
    expect(t.read().map((e) => e.seq)).toEqual([6]);
  });
});

describe("auth and paths", () => {
  it("compares tokens in constant time, whatever their lengths", () => {
    expect(tokenMatches("a-long-enough-token", "a-long-enough-token")).toBe(true);
    expect(tokenMatches("a-long-enough-toke", "a-long-enough-token")).toBe(false);
    expect(tokenMatches("", "a-long-enough-token")).toBe(false);
  });

  it.each([
    ["127.0.0.1", true],
    ["127.1.2.3", true],
    ["localhost", true],
    ["::1", true],
    ["[::1]", true],
    ["0.0.0.0", false],
    ["::", false],
    ["192.168.1.2", false],
    ["127.0.0.1.evil.example", false],
    ["localhost.evil.example", false],
  ])("%s is loopback: %s", (host, yes) => expect(isLoopbackHost(host)).toBe(yes));

  it("binds beyond loopback only with a token of at least 16 characters", () => {
    expect(() => checkBind("127.0.0.1", null)).not.toThrow();
    expect(() => checkBind("::1", null)).not.toThrow();
    expect(() => checkBind("0.0.0.0", null)).toThrow(expect.objectContaining({ code: "serve_token_required" }));
    expect(() => checkBind("192.168.1.2", "")).toThrow(expect.objectContaining({ code: "serve_token_required" }));
    expect(() => checkBind("0.0.0.0", "too-short")).toThrow(expect.objectContaining({ code: "serve_token_too_short" }));
    expect(() => checkBind("0.0.0.0", "x".repeat(16))).not.toThrow();
  });

  it("refuses path segments that could leave their directory", () => {
    expect(segments("/api/waves/w-1/report")).toEqual(["api", "waves", "w-1", "report"]);
    for (const p of ["/api/waves/..", "/api/%2e%2e/x", "/api/waves/a%2fb", "/x/a%5cb", "/x/%00", "/x/."]) expect(() => segments(p), p).toThrow();
  });
});
