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
import { getJson, serve, slowSandbox, startCli } from "./helpers.js";

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
    // Everything the page loads comes from the server itself: no CDN, nothing built elsewhere.
    const requested: string[] = [];
    page.on("request", (r) => void requested.push(r.url()));
    await page.goto(`${srv.url}/`, { waitUntil: "domcontentloaded" });

    // The wave appears, and (the newest) is opened.
    await page.waitForSelector(`#waves tr[data-wave="${W}"]`, { timeout: 20_000 });
    await page.waitForSelector(`#items tr[data-item="ok-4"] td.status`, { timeout: 20_000 });
    await page.evaluate(() => Object.assign(window, { __sameDocument: true }));
    // Keyboard focus on the wave's link; the live updates below re-render the table under it.
    // (In one step: a handle found first could be replaced by a live update before it is focused.)
    const focused = await page.evaluate((sel) => {
      const a = document.querySelector<HTMLElement>(sel);
      a?.focus();
      Object.assign(window, { __focused: a });
      return a !== null && document.activeElement === a;
    }, `#waves a[data-key="wave:${W}"]`);
    expect(focused).toBe(true);
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
    // The focus stayed on the wave's link through the re-renders (a new element, the same link).
    expect(
      await page.evaluate(() => {
        const now = document.activeElement;
        return { key: now?.getAttribute("data-key") ?? null, rerendered: now !== (window as unknown as { __focused?: Element }).__focused };
      }),
    ).toEqual({ key: `wave:${W}`, rerendered: true });
    expect(await page.$eval(`#waves a[data-key="wave:${W}"]`, (a) => a.getAttribute("aria-current"))).toBe("true");

    // Accessible: every link and table header has a name; a log link's name says whose log it is.
    const names = await page.evaluate(() =>
      [...document.querySelectorAll("a, th")].map((e) => e.getAttribute("aria-label") ?? e.textContent?.trim() ?? "").filter((n) => n === ""),
    );
    expect(names).toEqual([]);
    const tree = await page.accessibility.snapshot({ interestingOnly: true });
    const links: string[] = [];
    const walk = (n: { role?: string; name?: string; children?: unknown[] } | null): void => {
      if (n === null) return;
      if (n.role === "link") links.push(n.name ?? "");
      for (const c of n.children ?? []) walk(c as typeof n);
    };
    walk(tree);
    expect(links).toContain("log of rev-2, implement attempt 2 (opens in a new tab)");
    expect(links.filter((n) => n.trim() === "")).toEqual([]);
    // Status colours keep a contrast of at least 4.5:1, in the light and in the dark scheme.
    for (const scheme of ["light", "dark"] as const) {
      await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: scheme }]);
      const worst = await page.evaluate(() => {
        const rgb = (c: string): number[] => (c.match(/[\d.]+/g) ?? []).slice(0, 3).map(Number);
        const lum = (c: number[]): number => {
          const [r = 0, g = 0, b = 0] = c.map((v) => (v / 255 <= 0.03928 ? v / 255 / 12.92 : ((v / 255 + 0.055) / 1.055) ** 2.4));
          return 0.2126 * r + 0.7152 * g + 0.0722 * b;
        };
        const probe = document.createElement("div");
        probe.style.backgroundColor = "Canvas";
        document.body.append(probe);
        const canvas = rgb(getComputedStyle(probe).backgroundColor);
        probe.remove();
        let min = Infinity;
        for (const e of document.querySelectorAll(".status")) {
          const [a, b] = [lum(rgb(getComputedStyle(e).color)), lum(canvas)].sort((x, y) => y - x);
          min = Math.min(min, ((a ?? 0) + 0.05) / ((b ?? 0) + 0.05));
        }
        return min;
      });
      expect(worst, scheme).toBeGreaterThanOrEqual(4.5);
    }
    await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "light" }]);

    // Usage and cost per item: the sums of what its attempts reported, as the report gives them.
    type U = { input_tokens: number | null; output_tokens: number | null; cost_usd: number | null } | null;
    const report = (await getJson(srv.url, `/api/waves/${W}/report`)).json as { items: { beads_id: string; attempts: { usage: U }[] }[] };
    const ok1 = (report.items.find((i) => i.beads_id === "ok-1")?.attempts ?? []).filter((a) => a.usage?.input_tokens != null);
    expect(ok1.length).toBeGreaterThan(0);
    const cells = await page.$$eval(`#items tr[data-item="ok-1"] td.num`, (tds) => tds.map((td) => td.textContent ?? ""));
    expect(cells.slice(-2)).toEqual([
      String(ok1.reduce((n, a) => n + (a.usage?.input_tokens ?? 0) + (a.usage?.output_tokens ?? 0), 0)),
      `$${ok1.reduce((n, a) => n + (a.usage?.cost_usd ?? 0), 0).toFixed(4)}`,
    ]);

    // The timeline and the log links of every attempt are there.
    expect(await page.$$eval("#timeline li", (l) => l.length)).toBeGreaterThan(1);
    expect(await page.$$eval(`#items tr[data-item="rev-2"] td.logs a`, (l) => l.map((a) => a.textContent))).toEqual([
      "impl 1",
      "review 1",
      "impl 2",
      "review 2",
    ]);

    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
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
    expect(requested.length).toBeGreaterThan(3);
    expect(requested.filter((u) => !u.startsWith(`${srv.url}/`))).toEqual([]);
  } finally {
    await srv.close();
  }
}, 150_000);
