import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { readClaim } from "../../src/store/claim.js";
import { readControllerLock } from "../../src/store/controller-lock.js";
import { createLayout } from "../../src/store/layout.js";
import { readLease } from "../../src/store/lease.js";
import { hostName } from "../../src/store/proc.js";
import { it } from "../helpers/fixtures.js";
import { sleeper, track, type Sleeper } from "../helpers/procs.js";
import { TempDirs } from "../helpers/tmp.js";

// Real processes racing for the same lease, controller lock and item claim, through the compiled
// store (the one the CLI runs). Each round: every contender sleeps until one shared instant, then
// tries; exactly one may win, and the file must name the winner. Both a free file (exclusive
// create) and a stale one (takeover of a dead holder) are raced, several rounds each.

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CONTENDER = path.join(ROOT, "test/fixtures/store/contender.mjs");
const CONTENDERS = 6;
const ROUNDS = 8;

const tmp = new TempDirs(); // spans the file: the store is compiled once in beforeAll
let dist = "";
let dead: { pid: number; start_time: string | null };

beforeAll(async () => {
  // Compile only the store's module graph, into a temp dir whose node_modules points at ours, so
  // the test neither depends on nor disturbs the repo's dist/.
  const dir = tmp.make("dx-store-build-");
  symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
  const store = path.join(ROOT, "src/store");
  const files = readdirSync(store)
    .filter((f) => f.endsWith(".ts"))
    .map((f) => path.join(store, f));
  const tsconfig = path.join(dir, "tsconfig.json");
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: path.join(ROOT, "tsconfig.json"),
      compilerOptions: {
        outDir: path.join(dir, "dist"),
        rootDir: path.join(ROOT, "src"),
        declaration: false,
        sourceMap: false,
        typeRoots: [path.join(ROOT, "node_modules/@types")],
      },
      files,
      include: [],
    }),
  );
  const tsc = await execa(process.execPath, [path.join(ROOT, "node_modules/typescript/bin/tsc"), "-p", tsconfig], { reject: false, all: true });
  if (tsc.exitCode !== 0) throw new Error(`compiling the store failed:\n${tsc.all}`);
  dist = path.join(dir, "dist");

  // One identity of a process that existed and is gone: the stale holder of every stale round.
  const s: Sleeper = await sleeper();
  await s.killAndWait();
  dead = { pid: s.pid, start_time: s.start_time };
}, 120_000);

afterAll(() => tmp.cleanup());

interface Contender {
  pid: number;
  child: ResultPromise;
  next(): Promise<Record<string, unknown>>;
}

async function contenders(n: number): Promise<Contender[]> {
  const out: Contender[] = [];
  for (let i = 0; i < n; i++) {
    const child = track(execa(process.execPath, [CONTENDER, dist], { detached: true, stdin: "pipe", stdout: "pipe", stderr: "inherit", reject: false }));
    const pid = child.pid;
    if (pid === undefined) throw new Error("contender did not start");
    const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async () => {
      const r = await lines.next();
      if (r.done === true) throw new Error(`contender ${pid} exited early (${String((await child).exitCode)})`);
      const v: Record<string, unknown> = JSON.parse(String(r.value));
      return v;
    };
    out.push({ pid, child, next });
  }
  for (const c of out) expect(await c.next()).toMatchObject({ ready: true });
  return out;
}

/** One round: all contenders go at the same instant; returns the pids that won. */
async function round(cs: Contender[], cmd: Record<string, unknown>): Promise<number[]> {
  const goAtMs = Date.now() + 250;
  for (const c of cs) c.child.stdin!.write(`${JSON.stringify({ ...cmd, goAtMs })}\n`);
  const results = await Promise.all(cs.map((c) => c.next()));
  for (const r of results) expect(r.error, String(r.error)).toBeUndefined();
  return results.filter((r) => r.won === true).map((r) => Number(r.pid));
}

const iso = new Date().toISOString();
const deadLease = () =>
  JSON.stringify({ ...dead, host: hostName(), wave_id: "w1", acquired_at: iso, expires_at: new Date(Date.now() + 600_000).toISOString(), token: "dead" });
const deadLock = () => JSON.stringify({ ...dead, host: hostName(), started_at: iso, heartbeat_at: iso, token: "dead" });

describe("real processes racing", () => {
  it("for one lease: exactly one wins, free or held by a dead process", async () => {
    const cs = await contenders(CONTENDERS);
    const layout = createLayout(tmp.make());
    for (let r = 0; r < ROUNDS; r++) {
      for (const stale of [false, true]) {
        const file = layout.leasePath("w1", `bd-r${r}${stale ? "s" : "f"}`, 1);
        mkdirSync(path.dirname(file), { recursive: true });
        if (stale) writeFileSync(file, deadLease());
        const winners = await round(cs, { kind: "lease", round: r, file });
        expect(winners, `round ${r} stale=${stale}`).toHaveLength(1);
        const held = readLease(file);
        expect(held.kind === "ok" && held.holder.pid).toBe(winners[0]);
        expect(readdirSync(path.dirname(file)).filter((f) => f.startsWith(path.basename(file)))).toEqual([path.basename(file)]);
      }
    }
  });

  it("for one controller lock: exactly one resume wins, free or held by a dead controller", async () => {
    const cs = await contenders(CONTENDERS);
    for (let r = 0; r < ROUNDS; r++) {
      for (const stale of [false, true]) {
        const file = path.join(tmp.make(), "controller.lock");
        if (stale) writeFileSync(file, deadLock());
        const winners = await round(cs, { kind: "controller", round: r, file });
        expect(winners, `round ${r} stale=${stale}`).toHaveLength(1);
        const held = readControllerLock(file);
        expect(held.kind === "ok" && held.holder.pid).toBe(winners[0]);
      }
    }
  });

  it("for one item claim: exactly one wave gets it, free or claimed by a finished wave", async () => {
    const cs = await contenders(CONTENDERS);
    const root = tmp.make();
    const layout = createLayout(root);
    for (let r = 0; r < ROUNDS; r++) {
      for (const stale of [false, true]) {
        const item = `bd-r${r}${stale ? "s" : "f"}`;
        if (stale) {
          mkdirSync(layout.claimsDir(), { recursive: true });
          writeFileSync(
            layout.claimPath(item),
            JSON.stringify({ ...dead, host: hostName(), wave_id: "w-dead", item_id: item, claimed_at: iso, token: "dead" }),
          );
        }
        const winners = await round(cs, { kind: "claim", round: r, root, item, staleWave: "w-dead" });
        expect(winners, `round ${r} stale=${stale}`).toHaveLength(1);
        const held = readClaim(layout, item);
        expect(held.kind === "ok" && held.holder.wave_id).toBe(`w-${winners[0]}`);
      }
    }
  });
});
