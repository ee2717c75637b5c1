import { execFileSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import { it } from "../helpers/fixtures.js";
import { waitFor } from "../helpers/wait.js";
import { E2E, E2E_TIMEOUT_MS } from "../helpers/world.js";

// Issue #13: the live table on a real terminal (tmux): colour on a TTY, none with NO_COLOR, and an
// item held by a dependency says `waiting on <id>`.

const hasTmux = (() => {
  try {
    execFileSync("tmux", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const SOCKET = `dx-ops-${process.pid}`;
const tmux = (...args: string[]): string => execFileSync("tmux", ["-L", SOCKET, ...args], { encoding: "utf8" });

/** Run the CLI in a detached tmux session of a fixed size; the pane is a real TTY. */
function startInTmux(w: E2E, session: string, args: readonly string[], env: Record<string, string>): void {
  const script = path.join(w.root, `${session}.sh`);
  const vars = Object.entries({ ...w.env, ...env })
    .filter(([k, v]) => v !== undefined && k !== "DX_BATCH_NO_LIVE" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
    .map(([k, v]) => `export ${k}=${JSON.stringify(v)}`)
    .join("\n");
  const argv = [process.execPath, w.bin, ...args].map((a) => JSON.stringify(a)).join(" ");
  writeFileSync(script, `#!/bin/sh\n${vars}\nunset DX_BATCH_NO_LIVE\ncd ${JSON.stringify(w.root)}\n${argv}\necho "EXIT=$?"\nsleep 60\n`);
  chmodSync(script, 0o755);
  tmux("new-session", "-d", "-s", session, "-x", "150", "-y", "30", script);
}

/** The pane's text, with its colour escapes (-e). */
const pane = (session: string): string => tmux("capture-pane", "-p", "-e", "-t", session);

describe.skipIf(!hasTmux)("the live table on a TTY (tmux)", { timeout: E2E_TIMEOUT_MS }, () => {
  it("is coloured on a terminal, plain with NO_COLOR, and says `waiting on <id>` for a dependent item", async () => {
    const w = new E2E({
      items: ["tt-1", { id: "tt-2", depends_on: ["tt-1"] }],
      scenario: { items: { "tt-1": { implement: { gate: "tt" } } } },
      config: { require_review: false },
    });
    const cfg = ["--config", w.configPath];
    try {
      startInTmux(w, "colour", ["start", ...cfg, "--items", "tt-1,tt-2", "--wave-id", "w-tty"], {});
      const coloured = await waitFor(
        () => {
          const p = pane("colour");
          return p.includes("waiting on tt-1") && p.includes("implementing") ? p : null;
        },
        "the live table with tt-2 waiting on tt-1",
        { timeoutMs: 60_000 },
      );
      // implementing in cyan (SGR 36), the header in bold (SGR 1).
      expect(coloured).toMatch(/\u001b\[36mimplementing/);
      expect(coloured).toMatch(/\u001b\[1mITEM/);
      expect(coloured).toMatch(/tt-2\s+pending.*waiting on tt-1/);
      w.openGate("tt");
      const done = await waitFor(() => (pane("colour").includes("EXIT=0") ? pane("colour") : null), "the wave to end", { timeoutMs: 60_000 });
      expect(done).toMatch(/\u001b\[32mapproved/);

      // NO_COLOR: the same table without a colour escape in it.
      startInTmux(w, "plain", ["start", ...cfg, "--items", "tt-1,tt-2", "--wave-id", "w-tty-plain"], { NO_COLOR: "1" });
      const plain = await waitFor(() => (pane("plain").includes("EXIT=") ? pane("plain") : null), "the NO_COLOR wave to end", { timeoutMs: 60_000 });
      expect(plain).toContain("EXIT=0");
      expect(plain).toMatch(/tt-1\s+approved/);
      expect(plain).not.toMatch(/\u001b\[(32|36|1)m/);
    } finally {
      try {
        tmux("kill-server");
      } catch {
        // already gone
      }
    }
  });
});
