import { execFileSync } from "node:child_process";
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  existsSync,
  lchownSync,
  linkSync,
  lstatSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { describe, expect } from "vitest";
import { MAX_CONTRACT_BYTES, validateContract } from "../../src/contract/validate.js";
import { readContractSource } from "../../src/runner/contract-source.js";
import { fold } from "../../src/core/step.js";
import { LedgerWriter, readLedgerEvents } from "../../src/store/ledger.js";
import { createWaveDir } from "../../src/app/wave-files.js";
import { isDxError } from "../../src/errors.js";
import { serializeState } from "../../src/store/snapshot.js";
import { parseBdOutput } from "../../src/tracker/bd-json.js";
import { createBeadsTracker } from "../../src/tracker/beads.js";
import { implContract, Ledger } from "../helpers/events.js";
import { buildCli } from "../helpers/build.js";
import { expectRefusal, runCli, treeState } from "../helpers/cli.js";
import { it, tmp } from "../helpers/fixtures.js";
import type { CliResult } from "../helpers/procs.js";
import { agentSandbox, parseJson, REPO, sandbox, writeWave, type Sandbox } from "../helpers/world.js";

// The bad-input corpus (issue #5 §5): one case per entry of test/fixtures/bad-input, each checked
// for its reason code, a precise message, and nothing lost or written in part. Commands run as
// real processes against a sandbox that already holds a wave; "nothing written" compares a
// recursive listing (kind, size, mode, mtime, content hash) of the whole sandbox before and after.

const FIX = path.join(REPO, "test/fixtures/bad-input");
const bin = buildCli();

function load<T extends TSchema>(file: string, schema: T): Static<T> {
  const v: unknown = JSON.parse(readFileSync(path.join(FIX, file), "utf8"));
  if (!Value.Check(schema, v)) throw new Error(`${file}: ${Value.Errors(schema, v).First()?.message ?? "invalid"}`);
  return v;
}

const OLD = "wave-old";
const NEW = "wave-new";

/** A sandbox whose artifact directory holds a paused wave with ledgers, leases dir and snapshot. */
function populated(): Sandbox {
  const sb = sandbox(tmp);
  writeWave(sb, OLD, new Ledger({ items: ["bd-a1", "bd-b2"] }).start().implement("bd-a1", "opencode", "completed").pause().events);
  return sb;
}

const run = (sb: Sandbox, args: string[], env?: Record<string, string>): Promise<CliResult> => runCli(bin, args, { cwd: sb.root, ...(env ? { env } : {}) });

/** Run every command line, each refused with `code`; the sandbox must be byte for byte the same after. */
async function refusedUnchanged(sb: Sandbox, lines: { args: string[]; exit?: number; env?: Record<string, string> }[], code: string): Promise<string[]> {
  const before = treeState(sb.root);
  const results = await Promise.all(lines.map((l) => run(sb, l.args, l.env)));
  const messages = results.map((r, i) => expectRefusal(r, code, lines[i]?.exit ?? 1));
  expect(treeState(sb.root)).toEqual(before);
  return messages;
}

// ---- ids -------------------------------------------------------------------------------------

const IdsS = Type.Object({
  item_ids: Type.Array(Type.Object({ id: Type.String(), why: Type.String() })),
  item_lists: Type.Array(Type.Object({ items: Type.String(), code: Type.String(), why: Type.String() })),
  items_files: Type.Array(Type.Object({ text: Type.String(), code: Type.String(), why: Type.String() })),
  wave_ids: Type.Array(Type.Object({ id: Type.String(), why: Type.String() })),
});
const ids = load("ids.json", IdsS);

describe("bad ids: refused before anything is written", () => {
  it.each(ids.item_ids)("item id $id ($why) -> invalid_item_id", async ({ id }) => {
    const sb = populated();
    const [msg] = await refusedUnchanged(sb, [{ args: ["start", "--config", sb.configPath, "--items", id, "--wave-id", NEW] }], "invalid_item_id");
    expect(msg).toContain(JSON.stringify(id));
    expect(existsSync(sb.layout.waveDir(NEW))).toBe(false);
  });

  it.each(ids.item_lists)("--items '$items' ($why) -> $code", async ({ items, code }) => {
    const sb = populated();
    await refusedUnchanged(sb, [{ args: ["start", "--config", sb.configPath, "--items", items, "--wave-id", NEW] }], code);
  });

  it.each(ids.items_files)("--items-file ($why) -> $code", async ({ text, code }) => {
    const sb = populated();
    writeFileSync(path.join(sb.root, "items.txt"), text);
    await refusedUnchanged(sb, [{ args: ["start", "--config", sb.configPath, "--items-file", "items.txt", "--wave-id", NEW] }], code);
  });

  // Every command for the first two ids; a writer and a reader for the rest (one code path).
  it.each(ids.wave_ids.map((w, i) => ({ ...w, every: i < 2 })))("wave id '$id' ($why) -> invalid_wave_id (every command: $every)", async ({ id, every }) => {
    const sb = populated();
    const c = ["--config", sb.configPath, "--wave-id", id];
    const all = [
      ["start", ...c, "--items", "bd-a1"],
      ["status", ...c, "--json"],
      ["status", ...c],
      ["check", ...c],
      ["report", ...c],
      ["doctor", ...c, "--fix"],
      ["resume", ...c],
      ["cancel", ...c],
    ];
    const msgs = await refusedUnchanged(
      sb,
      (every ? all : all.slice(0, 2)).map((args) => ({ args })),
      "invalid_wave_id",
    );
    for (const m of msgs) expect(m).toContain(JSON.stringify(id));
  });
});

// ---- config files ----------------------------------------------------------------------------

const ConfigCasesS = Type.Array(Type.Object({ file: Type.String(), code: Type.String(), detail: Type.String() }));
const configCases = load("config/cases.json", ConfigCasesS);

describe("bad config files: refused naming the file and the key path, nothing written", () => {
  it("every corpus file has a case", () => {
    const files = readdirSync(path.join(FIX, "config")).filter((f) => f !== "cases.json");
    expect(files.sort()).toEqual(configCases.map((c) => c.file).sort());
  });

  // The two commands that write (start, doctor --fix) for every case, and the readers for the first.
  it.each(configCases.map((c, i) => ({ ...c, readers: i === 0 })))("$file -> $code", async ({ file, code, detail, readers }) => {
    const sb = populated();
    const bad = path.join(sb.root, "bad.json");
    copyFileSync(path.join(FIX, "config", file), bad);
    const c = ["--config", "bad.json"];
    const lines = [
      ["start", ...c, "--items", "bd-a1", "--wave-id", NEW],
      ["doctor", ...c, "--wave-id", OLD, "--fix"],
    ];
    if (readers)
      lines.push(
        ["status", ...c, "--wave-id", OLD, "--json"],
        ["check", ...c, "--wave-id", OLD],
        ["report", ...c, "--wave-id", OLD],
        ["resume", ...c, "--wave-id", OLD],
        ["cancel", ...c, "--wave-id", OLD],
      );
    const msgs = await refusedUnchanged(
      sb,
      lines.map((args) => ({ args })),
      code,
    );
    for (const m of msgs) {
      expect(m.startsWith(`${bad}: `), m).toBe(true);
      expect(m).toContain(detail);
    }
  });

  it("the same refusal when the file is found as ./dx-batch.config.json or through $DX_BATCH_CONFIG", async () => {
    const sb = populated();
    const local = path.join(sb.root, "dx-batch.config.json");
    copyFileSync(path.join(FIX, "config", "unknown-key.json"), local);
    const viaEnv = path.join(sb.root, "env.json");
    copyFileSync(path.join(FIX, "config", "wrong-type.json"), viaEnv);
    const [a] = await refusedUnchanged(sb, [{ args: ["status", "--wave-id", OLD] }], "config_unknown_key");
    expect(a).toBe(`${local}: /max_paralel: unknown key`);
    const [b] = await refusedUnchanged(sb, [{ args: ["status", "--wave-id", OLD], env: { DX_BATCH_CONFIG: viaEnv } }], "config_invalid");
    expect(b).toBe(`${viaEnv}: /max_parallel: must be integer, got string`);
  });

  it("a missing config file, a bad environment value and a bad flag are refused too", async () => {
    const sb = populated();
    const [a] = await refusedUnchanged(sb, [{ args: ["status", "--config", "nope.json", "--wave-id", OLD] }], "config_not_found");
    expect(a).toContain(path.join(sb.root, "nope.json"));
    const [b] = await refusedUnchanged(
      sb,
      [{ args: ["status", "--wave-id", OLD], env: { DX_BATCH_CONFIG: path.join(sb.root, "gone.json") } }],
      "config_not_found",
    );
    expect(b).toContain("$DX_BATCH_CONFIG");
    const [c] = await refusedUnchanged(
      sb,
      [{ args: ["start", "--config", sb.configPath, "--items", "bd-a1"], env: { DX_BATCH_EXEC_PROCESS_CAP: "lots" } }],
      "config_invalid",
    );
    expect(c).toContain("DX_BATCH_EXEC_PROCESS_CAP");
    const [d] = await refusedUnchanged(sb, [{ args: ["start", "--config", sb.configPath, "--items", "bd-a1", "--max-parallel", "0"] }], "usage");
    expect(d).toContain("--max-parallel must be a positive integer");
  });
});

// ---- contracts -------------------------------------------------------------------------------

const ContractCasesS = Type.Array(
  Type.Object({
    file: Type.String(),
    phase: Type.Union([Type.Literal("implement"), Type.Literal("review")]),
    ok: Type.Optional(Type.Boolean()),
    code: Type.Optional(Type.String()),
    detail: Type.Optional(Type.String()),
  }),
);
const contractCases = load("contracts/cases.json", ContractCasesS);

describe("contracts: the runner-free validator refuses with the phase's reason code and a precise detail", () => {
  it("every corpus file has a case", () => {
    const files = readdirSync(path.join(FIX, "contracts")).filter((f) => f !== "cases.json");
    expect([...new Set(contractCases.map((c) => c.file))].sort()).toEqual(files.sort());
  });

  it.each(contractCases)("$file as $phase", ({ file, phase, ok, code, detail }) => {
    const text = readFileSync(path.join(FIX, "contracts", file), "utf8");
    const r = validateContract(text, { item_id: "bd-a1", phase });
    if (ok === true) {
      expect(r).toMatchObject({ ok: true, contract: { beads_id: "bd-a1", phase } });
      return;
    }
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.reason_code).toBe(code);
    expect(r.detail).toContain(detail);
  });

  const padded = (bytes: number, fill = "x"): string => {
    const c = implContract("bd-a1", "completed", { summary: "" });
    const empty = JSON.stringify(c).length;
    const per = Buffer.byteLength(fill, "utf8");
    return JSON.stringify({ ...c, summary: fill.repeat(Math.floor((bytes - empty) / per)) });
  };

  it("a 2 MiB contract is refused as too large, before it is parsed", () => {
    const big = padded(2 * 1024 * 1024);
    expect(Buffer.byteLength(big)).toBeGreaterThan(2 * 1024 * 1024 - 10);
    expect(validateContract(big, { item_id: "bd-a1", phase: "implement" })).toEqual({
      ok: false,
      reason_code: "implement_contract_missing_or_invalid",
      detail: `contract too large: over ${MAX_CONTRACT_BYTES} bytes (1 MiB)`,
    });
    // Over the limit and not JSON either: the size is what is reported.
    expect(validateContract(`${"{".repeat(2 * 1024 * 1024)}`, { item_id: "bd-a1", phase: "review" })).toMatchObject({
      ok: false,
      reason_code: "review_contract_missing_or_invalid",
      detail: expect.stringContaining("too large"),
    });
  });

  it("the limit is 1 MiB of UTF-8 bytes: exactly 1 MiB passes, one byte more and multi-byte text over it do not", () => {
    const exact = padded(MAX_CONTRACT_BYTES);
    const atLimit = exact + " ".repeat(MAX_CONTRACT_BYTES - Buffer.byteLength(exact));
    expect(Buffer.byteLength(atLimit)).toBe(MAX_CONTRACT_BYTES);
    expect(validateContract(atLimit, { item_id: "bd-a1", phase: "implement" }).ok).toBe(true);
    expect(validateContract(`${atLimit} `, { item_id: "bd-a1", phase: "implement" })).toMatchObject({
      ok: false,
      detail: expect.stringContaining("too large"),
    });
    const wide = padded(MAX_CONTRACT_BYTES + 64, "é");
    expect(wide.length).toBeLessThan(MAX_CONTRACT_BYTES);
    expect(validateContract(wide, { item_id: "bd-a1", phase: "implement" })).toMatchObject({ ok: false, detail: expect.stringContaining("too large") });
  });
});

// ---- bd output -------------------------------------------------------------------------------

const BdCasesS = Type.Array(
  Type.Object({
    case: Type.String(),
    kind: Type.Union([Type.Literal("data"), Type.Literal("error"), Type.Literal("invalid")]),
    detail: Type.Optional(Type.String()),
    show: Type.Object({
      found: Type.Optional(Type.Boolean()),
      title: Type.Optional(Type.String()),
      blocked_by: Type.Optional(Type.Array(Type.String())),
      reason_code: Type.Optional(Type.String()),
      detail: Type.Optional(Type.String()),
    }),
  }),
);
const bdCases = load("bd/cases.json", BdCasesS);
const BD_DIR = path.join(FIX, "bd");
const bdFile = (c: string, ext: string): string => {
  const f = path.join(BD_DIR, `${c}${ext}`);
  return existsSync(f) ? readFileSync(f, "utf8") : "";
};

describe("bd output: garbage, errors and the enveloped form", () => {
  it("every recorded answer has a case", () => {
    const names = new Set(
      readdirSync(BD_DIR)
        .filter((f) => /\.(out|err|exit)$/.test(f))
        .map((f) => f.replace(/\.(out|err|exit)$/, "")),
    );
    expect([...names].sort()).toEqual(bdCases.map((c) => c.case).sort());
  });

  it.each(bdCases)("parseBdOutput($case) -> $kind", (c) => {
    const r = parseBdOutput(bdFile(c.case, ".out"), bdFile(c.case, ".err"));
    expect(r.kind).toBe(c.kind);
    if (r.kind === "error") expect(r.message).toContain(c.detail);
    if (r.kind === "invalid") expect(r.detail).toContain(c.detail);
  });

  it.each(bdCases)("beads tracker show() over a bd that answers $case", async (c) => {
    const root = tmp.make("dx-bad-bd-");
    const tracker = createBeadsTracker({
      command: path.join(BD_DIR, "replay-bd.mjs"),
      cwd: root,
      env: { ...process.env, BAD_BD_DIR: BD_DIR, BAD_BD_CASE: c.case },
      lockFile: path.join(root, "bd.lock"),
      retry: { attempts: 1 },
      timeoutMs: 30_000,
    });
    const r = await tracker.show("bd-a1");
    if (c.show.found === true) {
      expect(r).toMatchObject({ found: true, issue: { id: "bd-a1", title: c.show.title, blocked_by: c.show.blocked_by } });
    } else {
      expect(r).toMatchObject({ found: false, reason_code: c.show.reason_code });
      if (!r.found) expect(r.detail).toContain(c.show.detail);
    }
  });
});

// ---- damaged ledgers and snapshots -----------------------------------------------------------

/** bd-a1 approved (6 item events), bd-b2 failed once and pending again; the wave paused. */
function damagedCandidate(): Sandbox {
  const sb = sandbox(tmp);
  writeWave(
    sb,
    OLD,
    new Ledger({ items: ["bd-a1", "bd-b2"] })
      .start()
      .implement("bd-a1", "opencode", "completed")
      .review("bd-a1", "cc-glm", "APPROVED")
      .implement("bd-b2", "opencode", { contract: implContract("bd-b2", "failed") })
      .pause().events,
  );
  return sb;
}

const readArgs = (sb: Sandbox) => ["--config", sb.configPath, "--wave-id", OLD];
const statusDoc = async (sb: Sandbox): Promise<unknown> => {
  const r = await run(sb, ["status", ...readArgs(sb), "--json"]);
  expect(r.code, r.stderr).toBe(0);
  return parseJson(r.stdout);
};
const reportDoc = async (sb: Sandbox): Promise<unknown> => {
  const r = await run(sb, ["report", ...readArgs(sb), "--format", "json"]);
  expect(r.code, r.stderr).toBe(0);
  return parseJson(r.stdout);
};
interface DoctorDoc {
  ok: boolean;
  issues: { type: string; severity: string; message: string }[];
  fixed: string[];
  recommendations: string[];
}
const doctorDoc = async (sb: Sandbox, ...flags: string[]): Promise<{ code: number | null; doc: DoctorDoc }> => {
  const r = await run(sb, ["doctor", ...readArgs(sb), "--json", ...flags]);
  const doc = parseJson(r.stdout) as DoctorDoc;
  // Every test root is under /tmp: the note about that is not what these cases look at.
  return { code: r.code, doc: { ...doc, issues: doc.issues.filter((i) => i.type !== "state_root_in_tmp") } };
};

describe("a truncated ledger (torn last line)", () => {
  it.each([
    ["a half-written event", `{"seq":99,"at":"2026-01-01T00:10:00.000Z","event":"tracker_err`],
    [
      "a whole event without its newline",
      `{"seq":99,"at":"2026-01-01T00:10:00.000Z","event":"tracker_error","item_id":"bd-a1","op":"comment","reason_code":"x","detail":"y"}`,
    ],
  ])("%s: status, check and report still work; doctor reports ledger_torn_tail; --fix cuts it", async (_name, tail) => {
    const sb = damagedCandidate();
    const status = await statusDoc(sb);
    const report = await reportDoc(sb);
    const ledger = sb.layout.itemLedger(OLD, "bd-a1");
    const intact = readFileSync(ledger);
    appendFileSync(ledger, tail);

    const before = treeState(sb.root);
    expect(await statusDoc(sb)).toEqual(status);
    expect(await reportDoc(sb)).toEqual(report);
    const check = await run(sb, ["check", ...readArgs(sb), "--json"]);
    expect(check.code).toBe(2);
    expect(parseJson(check.stdout)).toMatchObject({ state: "paused", reason_code: "wave_paused_signal" });
    const d = await doctorDoc(sb);
    expect(d.code).toBe(1);
    expect(d.doc.issues).toEqual([{ type: "ledger_torn_tail", severity: "warning", message: expect.stringContaining(`${ledger}:7: incomplete last line`) }]);
    expect(d.doc.recommendations).toContain(`dx-batch doctor --wave-id ${OLD} --fix`);
    expect(treeState(sb.root)).toEqual(before);

    const fix = await doctorDoc(sb, "--fix");
    expect(fix.doc.fixed).toEqual([`cut the torn last line of ${ledger} (${Buffer.byteLength(tail)} bytes)`]);
    expect(readFileSync(ledger).equals(intact)).toBe(true);
    const after = await doctorDoc(sb);
    expect(after).toEqual({ code: 0, doc: { wave_id: OLD, ok: true, issues: [], fixed: [], recommendations: [] } });
  });
});

describe("a corrupt ledger line in the middle", () => {
  const insertAt = (file: string, lineNo: number, text: string): void => {
    const lines = readFileSync(file, "utf8").split("\n");
    lines.splice(lineNo - 1, 0, text);
    writeFileSync(file, lines.join("\n"));
  };

  it.each([
    ["not JSON", () => "garbage", "not JSON"],
    ["JSON that is not an event", () => `{"hello":"world"}`, "/event: missing or not a string"],
    ["a seq out of order", (f: string) => readFileSync(f, "utf8").split("\n")[0] ?? "", "seq 3 does not follow seq 4"],
  ])("%s: status/check/report refuse with ledger_corrupt naming file:line; doctor reports it critical and --fix writes nothing", async (_n, line, detail) => {
    const sb = damagedCandidate();
    const ledger = sb.layout.itemLedger(OLD, "bd-a1");
    insertAt(ledger, 3, line(ledger));

    const msgs = await refusedUnchanged(
      sb,
      [
        { args: ["status", ...readArgs(sb)] },
        { args: ["status", ...readArgs(sb), "--json"] },
        // check answers an unusable wave with exit 3, like a failed one (issue #9).
        { args: ["check", ...readArgs(sb)], exit: 3 },
        { args: ["report", ...readArgs(sb)] },
      ],
      "ledger_corrupt",
    );
    for (const m of msgs) expect(m).toContain(`${ledger}:3: ${detail}`);

    const before = treeState(sb.root);
    for (const flags of [[], ["--fix"]]) {
      const d = await doctorDoc(sb, ...flags);
      expect(d.code).toBe(1);
      expect(d.doc.ok).toBe(false);
      expect(d.doc.fixed).toEqual([]);
      expect(d.doc.issues).toEqual([{ type: "ledger_corrupt", severity: "critical", message: expect.stringContaining(`${ledger}:3`) }]);
      expect(d.doc.recommendations.length).toBeGreaterThan(0);
    }
    expect(treeState(sb.root)).toEqual(before);
  });
});

describe("a corrupt or missing snapshot", () => {
  it.each([
    ["truncated JSON", "state_corrupt", (f: string) => writeFileSync(f, readFileSync(f, "utf8").slice(0, 200))],
    ["JSON of the wrong shape", "state_corrupt", (f: string) => writeFileSync(f, `{"wave_id":"${OLD}","status":"running"}\n`)],
    ["an empty file", "state_corrupt", (f: string) => writeFileSync(f, "")],
    ["deleted", "state_missing", (f: string) => unlinkSync(f)],
  ])("%s: status works from the ledgers, doctor reports %s, --fix rewrites it equal to the replay", async (_n, type, damage) => {
    const sb = damagedCandidate();
    const file = sb.layout.waveState(OLD);
    const original = readFileSync(file, "utf8");
    const status = await statusDoc(sb);
    damage(file);

    const before = treeState(sb.root);
    expect(await statusDoc(sb)).toEqual(status);
    const check = await run(sb, ["check", ...readArgs(sb)]);
    expect(check.code).toBe(2);
    const d = await doctorDoc(sb);
    expect(d.code).toBe(1);
    expect(d.doc.issues).toEqual([{ type, severity: "critical", message: expect.any(String) }]);
    expect(d.doc.recommendations).toContain(`dx-batch doctor --wave-id ${OLD} --fix`);
    expect(treeState(sb.root)).toEqual(before);

    const fix = await doctorDoc(sb, "--fix");
    expect(fix.doc.fixed).toEqual(["rebuilt wave_state.json from the ledgers"]);
    const rebuilt = readFileSync(file, "utf8");
    expect(rebuilt).toBe(serializeState(fold((await readLedgerEvents(sb.layout, OLD)).events)));
    expect(rebuilt).toBe(original);
    expect((await doctorDoc(sb)).code).toBe(0);
  });

  it("a snapshot behind the ledger (crash between append and snapshot): reads replay the newer events", async () => {
    const sb = damagedCandidate();
    const seq = fold((await readLedgerEvents(sb.layout, OLD)).events).seq;
    const w = new LedgerWriter(sb.layout, OLD, { lastSeq: seq });
    w.append({
      seq: seq + 1,
      at: "2026-01-01T01:00:00.000Z",
      event: "item_settled",
      item_id: "bd-b2",
      status: "blocked",
      reason_code: "item_claimed_by_other_wave:w9",
      error: "claimed",
    });
    w.close();
    const s = (await statusDoc(sb)) as { items: { beads_id: string; status: string; reason_code: string }[] };
    expect(s.items.find((i) => i.beads_id === "bd-b2")).toMatchObject({ status: "blocked", reason_code: "item_claimed_by_other_wave:w9" });
    expect((await doctorDoc(sb)).code).toBe(0);
  });
});

// ---- the artifact directory ------------------------------------------------------------------

describe("a missing artifact directory", () => {
  it("reads answer wave_not_found (check: exit 3) and create nothing", async () => {
    const sb = sandbox(tmp);
    expect(existsSync(sb.art)).toBe(false);
    const a = readArgs(sb);
    await refusedUnchanged(
      sb,
      [
        { args: ["status", ...a] },
        { args: ["check", ...a], exit: 3 },
        { args: ["report", ...a] },
        { args: ["doctor", ...a] },
        { args: ["doctor", ...a, "--fix"] },
      ],
      "wave_not_found",
    );
    expect(existsSync(sb.art)).toBe(false);
  });

  it("start creates it (mode 0700) and runs the wave", async () => {
    const sb = agentSandbox(tmp, { artifact_dir: "deep/new/art" });
    expect(existsSync(path.dirname(sb.art))).toBe(false);
    const r = await runCli(bin, ["start", "--config", sb.configPath, "--items", "ok-1", "--wave-id", NEW], { cwd: sb.root, timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(sb.layout.waveState(NEW))).toBe(true);
    const check = await run(sb, ["check", "--config", sb.configPath, "--wave-id", NEW, "--json"]);
    expect(parseJson(check.stdout)).toMatchObject({ state: "completed" });
  });
});

describe("an unwritable artifact directory", () => {
  it("under a regular file: start is refused with one clear line naming the path, nothing is created", async () => {
    const sb = populated();
    const blocker = path.join(sb.root, "blocker");
    writeFileSync(blocker, "not a directory\n");
    const cfg = path.join(sb.root, "blocked.json");
    writeFileSync(cfg, JSON.stringify({ artifact_dir: "blocker/art", runner_log_dir: "runner", workspace_root: "agents", tracker: { type: "none" } }));
    // --keep-failed: no provider of this sandbox passes preflight, and that early refusal (issue #13)
    // would otherwise come before the wave directory is ever made.
    const before = treeState(sb.root);
    const r = await run(sb, ["start", "--config", cfg, "--items", "bd-a1", "--wave-id", NEW, "--keep-failed"]);
    // A first run (no wave under the artifact dir yet) names its config, tracker and artifact dir first.
    const [firstRun, ...rest] = r.stderr.split("\n");
    expect(firstRun).toBe(`config: ${cfg}; tracker: none (the item ids alone); artifacts: ${path.join(blocker, "art")}`);
    const msg = expectRefusal({ ...r, stderr: rest.join("\n") }, "artifact_dir_unwritable");
    expect(treeState(sb.root)).toEqual(before);
    expect(msg).toContain(path.join(blocker, "art"));
    expect(msg).toContain("ENOTDIR");
    await refusedUnchanged(sb, [{ args: ["status", "--config", cfg, "--wave-id", NEW] }], "wave_not_found");
  });

  describe("read-only (chmod 0500)", () => {
    /** A completed wave whose artifact directory and waves/ are then made read-only. */
    const lockedDown = (): Sandbox => {
      const sb = sandbox(tmp);
      writeWave(sb, OLD, new Ledger({ items: ["bd-a1"] }).start().implement("bd-a1", "opencode", "completed").review("bd-a1", "cc-glm", "APPROVED").events);
      for (const d of [sb.art, sb.layout.wavesDir()]) chmodSync(d, 0o500);
      return sb;
    };
    // Put the bits back, or the temp directory could not be removed by a non-root user.
    const unlock = (sb: Sandbox) => {
      for (const d of [sb.art, sb.layout.wavesDir()]) chmodSync(d, 0o700);
    };

    it("reads still work and write nothing", async () => {
      const sb = lockedDown();
      try {
        const before = treeState(sb.root);
        const a = readArgs(sb);
        for (const args of [
          ["status", ...a, "--json"],
          ["check", ...a],
          ["report", ...a],
          ["doctor", ...a, "--json"],
        ]) {
          const r = await run(sb, args);
          expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
        }
        expect(treeState(sb.root)).toEqual(before);
      } finally {
        unlock(sb);
      }
    });

    it("start is refused with one clear line and nothing partial (as nobody when the suite runs as root)", async () => {
      const sb = lockedDown();
      try {
        // Root (as in CI containers) ignores permission bits, so there the command runs as nobody
        // (uid 65534), who is given the sandbox: the store insists its directories are the user's own.
        const user = process.getuid?.() === 0 ? asNobody(sb) : {};
        const before = treeState(sb.root);
        // waves/ exists, so it is the wave's own directory that cannot be made. It is first made under a
        // staging name in waves/ (then renamed into place with its first ledger line); the message
        // names the wave directory, not that staging name, and the remedy the directory to fix.
        // --keep-failed: no provider of this sandbox passes preflight, an earlier refusal (issue #13).
        const r = await runCli(bin, ["start", "--config", sb.configPath, "--items", "bd-a1", "--wave-id", NEW, "--keep-failed"], { cwd: sb.root, ...user });
        const msg = expectRefusal(r, "permission_denied");
        expect(msg).toContain(sb.layout.waveDir(NEW));
        expect(msg).not.toContain(".creating-");
        expect(msg).toContain("EACCES");
        expect(r.stderr).toContain(`remedy: check the owner and mode of ${sb.layout.wavesDir()}`);
        expect(treeState(sb.root)).toEqual(before);
      } finally {
        unlock(sb);
      }
    });
  });
});

const NOBODY = 65534;

/** Hand the sandbox to nobody and return the options that run a command as nobody there. */
function asNobody(sb: Sandbox): { uid: number; gid: number; env: Record<string, string> } {
  const walk = (p: string): void => {
    lchownSync(p, NOBODY, NOBODY);
    if (lstatSync(p).isDirectory()) for (const name of readdirSync(p)) walk(path.join(p, name));
  };
  walk(sb.root);
  return { uid: NOBODY, gid: NOBODY, env: { HOME: sb.root } };
}

describe("start on an existing wave id", () => {
  // The remedy fits the wave's state (issue #13): a paused wave is resumed, a completed one reported.
  it.each([
    ["paused", () => new Ledger({ items: ["bd-a1", "bd-b2"] }).start().implement("bd-a1", "opencode", "completed").pause(), "resume"],
    ["completed", () => new Ledger({ items: ["bd-a1"] }).start().implement("bd-a1", "opencode", "completed").review("bd-a1", "cc-glm", "APPROVED"), "report"],
  ])("%s: refused with wave_exists and a remedy fitting its state; the wave is untouched", async (state, events, next) => {
    const sb = sandbox(tmp);
    writeWave(sb, OLD, events().events);
    const before = treeState(sb.root);
    const r = await run(sb, ["start", "--config", sb.configPath, "--items", "bd-a1,bd-c3", "--wave-id", OLD]);
    expectRefusal(r, "wave_exists");
    expect(r.stderr).toContain(`error: wave_exists: wave ${OLD} already exists (${state})`);
    expect(r.stderr).toContain(`remedy: dx-batch ${next} --wave-id ${OLD} --config ${sb.configPath}; or pick another --wave-id`);
    expect(treeState(sb.root)).toEqual(before);
  });

  it("a start that loses the race to create the wave does not advise resume: that wave is new and likely running", () => {
    const sb = sandbox(tmp);
    const first = new Ledger({ items: ["bd-a1"] }).start().events[0];
    if (first?.event !== "wave_created") throw new Error("no wave_created");
    const created = { ...first, wave_id: NEW, wave_dir: sb.layout.waveDir(NEW) };
    createWaveDir(sb.layout, NEW, created);
    const before = treeState(sb.root);
    const err = (() => {
      try {
        createWaveDir(sb.layout, NEW, created);
        return null;
      } catch (e) {
        return e;
      }
    })();
    expect(isDxError(err) && err.code).toBe("wave_exists");
    if (!isDxError(err)) return;
    expect(err.remedy).toBe(`see it with dx-batch status --wave-id ${NEW} (it names the next command), or pick another --wave-id`);
    expect(err.remedy).not.toContain("resume");
    // The loser's staging directory is gone and the winner's wave untouched (waves/ itself was written).
    const without = (t: Record<string, string>) => Object.fromEntries(Object.entries(t).filter(([k]) => k !== "art/waves"));
    expect(without(treeState(sb.root))).toEqual(without(before));
  });
});

// ---- hostile contracts (issue #10) -----------------------------------------------------------

const HostileCasesS = Type.Array(Type.Object({ name: Type.String(), plant: Type.String(), code: Type.String(), detail: Type.String() }));
const hostileCases = load("hostile/cases.json", HostileCasesS);
const SECRET = "root:*:20000:SECRET-hostile-0123456789";

describe("hostile contracts: refused unread, the secret never in the refusal", () => {
  it.each(hostileCases)("$name -> $code", async ({ plant, code, detail }) => {
    const dir = tmp.make("dx-hostile-contract-");
    const secret = path.join(dir, "secret");
    writeFileSync(secret, `${SECRET}\n`, { mode: 0o600 });
    const file = path.join(dir, "contract.json");
    const log = path.join(dir, "job.log");
    const copy = path.join(dir, "copy.contract.json");
    writeFileSync(log, "agent output\n");
    switch (plant) {
      case "symlink-secret":
        symlinkSync(secret, file);
        break;
      case "symlink-environ":
        symlinkSync("/proc/self/environ", file);
        break;
      case "fifo":
        execFileSync("mkfifo", [file]);
        break;
      case "hardlink-secret":
        linkSync(secret, file);
        break;
      case "oversize-file":
        writeFileSync(file, "x".repeat(MAX_CONTRACT_BYTES + 1));
        break;
      case "oversize-marker":
        writeFileSync(log, `CONTRACT:JSON:{"phase":"implement","pad":"${"x".repeat(MAX_CONTRACT_BYTES)}"}\n`);
        break;
      case "secret-text":
        writeFileSync(file, `${SECRET}\n`);
        break;
      default:
        throw new Error(`unknown plant ${plant}`);
    }
    const src = await readContractSource(plant === "oversize-marker" ? null : file, log, { copyTo: copy });
    let got: { code: string; detail: string };
    if (src.found) {
      const v = validateContract(src.text, { item_id: "bd-a1", phase: "implement" });
      expect(v.ok).toBe(false);
      got = v.ok ? { code: "", detail: "" } : { code: v.reason_code, detail: v.detail };
    } else got = { code: src.reason_code, detail: src.detail };
    expect(got.code).toBe(code);
    expect(got.detail).toContain(detail);
    expect(got.detail).not.toContain("SECRET");
    expect(got.detail).not.toContain("root:");
    // A refused file is never copied where dx-batch keeps its files (the agent's own text is: it was read as a file of its own).
    if (plant !== "secret-text") expect(existsSync(copy)).toBe(false);
    expect(readFileSync(secret, "utf8")).toBe(`${SECRET}\n`);
  });
});
