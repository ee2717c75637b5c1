import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import puppeteer, { type Browser } from "puppeteer-core";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { attemptLogs } from "../../src/serve/logs.js";
import { buildCli } from "../helpers/build.js";
import { killAllChildren } from "../helpers/procs.js";
import { TempDirs } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait.js";
import { serve, slowSandbox, startCli } from "./helpers.js";

// A real headless Chromium (Debian's, never a downloaded one) on the dashboard while a real wave
// runs: the wave appears, item statuses change without a reload, and a log link opens the
// attempt's log. DX_BATCH_SCREENSHOT=<file> keeps a screenshot of the finished wave (the README's).

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const tmp = new TempDirs();
let bin = "";
let browser: Browser | null = null;
let profile = "";

beforeAll(() => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  bin = buildCli();
}, 180_000);
afterEach(async () => {
  await browser?.close().catch(() => undefined);
  browser = null;
  if (profile) rmSync(profile, { recursive: true, force: true });
  await killAllChildren();
});
afterAll(() => tmp.cleanup());

it("shows a running wave live, and opens an attempt's log", async () => {
  const sb = slowSandbox(tmp, 1500);
  const W = "wave-browser";
  const wave = startCli(
    bin,
    ["start", "--items", "ok-1,rev-2,blk-3,ok-4", "--max-parallel", "2", "--wave-id", W, "--config", sb.configPath, "--repo", sb.repo],
    sb.root,
  );
  let waveDone = false;
  void wave.exited.then(() => (waveDone = true));
  const srv = await serve(sb);
  try {
    await waitFor(() => existsSync(sb.layout.waveLedger(W)), "the wave ledger");
    profile = mkdtempSync(path.join(os.tmpdir(), "dx-chromium-"));
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [...FLAGS, `--user-data-dir=${profile}`],
      defaultViewport: { width: 1280, height: 860 },
    });
    const page = await browser.newPage();
    await page.goto(`${srv.url}/`, { waitUntil: "domcontentloaded" });

    // The wave appears, and (the newest) is opened.
    await page.waitForSelector(`#waves tr[data-wave="${W}"]`, { timeout: 20_000 });
    await page.waitForSelector(`#items tr[data-item="ok-4"] td.status`, { timeout: 20_000 });
    await page.evaluate(() => Object.assign(window, { __sameDocument: true }));
    const statuses = (): Promise<Record<string, string>> =>
      page.$$eval("#items tbody tr", (rows) =>
        Object.fromEntries(rows.map((r) => [r.getAttribute("data-item") ?? "", r.querySelector("td.status")?.textContent ?? ""])),
      );
    const first = await statuses();
    expect(waveDone).toBe(false);
    const open = Object.entries(first).filter(([, s]) => !["approved", "blocked", "failed", "cancelled"].includes(s));
    expect(open.length).toBeGreaterThan(0);

    // Statuses change with no reload: the same document, new text.
    await page.waitForFunction(() => document.querySelector("#wave-status")?.textContent === "completed", { timeout: 90_000, polling: 200 });
    const last = await statuses();
    for (const [item] of open) expect(last[item], item).not.toBe(first[item]);
    expect(last).toEqual({ "ok-1": "approved", "rev-2": "approved", "blk-3": "blocked", "ok-4": "approved" });
    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    const announced = await page.$eval("#announce", (e) => e.textContent ?? "");
    expect(announced).toMatch(/ok-4: \w+ → /);

    // The timeline and the log links of every attempt are there.
    expect(await page.$$eval("#timeline li", (l) => l.length)).toBeGreaterThan(1);
    expect(await page.$$eval(`#items tr[data-item="rev-2"] td.logs a`, (l) => l.map((a) => a.textContent))).toEqual([
      "impl 1",
      "review 1",
      "impl 2",
      "review 2",
    ]);

    if (process.env.DX_BATCH_SCREENSHOT) await page.screenshot({ path: process.env.DX_BATCH_SCREENSHOT, fullPage: true });

    // A log link opens that attempt's log.
    const b = browser;
    const opened = b.waitForTarget((t) => t.url().includes(`/items/rev-2/logs?attempt=2&phase=implement`), { timeout: 20_000 });
    await page.click(`#items tr[data-item="rev-2"] td.logs a[data-phase="implement"][data-attempt="2"]`);
    const logPage = await (await opened).page();
    if (logPage === null) throw new Error("the log link opened no page");
    await logPage.waitForFunction(() => document.body.innerText.length > 0, { timeout: 20_000 });
    const shown = await logPage.evaluate(() => document.body.innerText);
    const recorded = (attemptLogs(sb.layout, W, "rev-2") ?? []).find((l) => l.phase === "implement" && l.attempt === 2);
    expect(recorded).toBeDefined();
    expect(shown.trim()).toBe(readFileSync(recorded?.path ?? "", "utf8").trim());
    expect(shown).toContain("implement rev-2 attempt 2");
  } finally {
    await srv.close();
  }
}, 150_000);
