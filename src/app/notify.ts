import { writeFileSync } from "node:fs";
import path from "node:path";
import type { NotifyConfig } from "../config/types.js";
import { loadExeca } from "../shared/lazy-execa.js";

// Someone is told when a wave ends (issue #13): a command with the report's path in its env, and a
// webhook that gets the JSON report, retried. A failure is a record for the ledger, never an error
// that could fail the wave.

export interface NotifyOutcome {
  channel: "command" | "webhook";
  ok: boolean;
  /** What went wrong, in the command's or server's words (null when ok). */
  error: string | null;
  attempts: number;
}

export interface NotifyInput {
  wave_id: string;
  state: string;
  wave_dir: string;
  report: unknown;
}

export interface NotifyTiming {
  command_timeout_ms: number;
  webhook_timeout_ms: number;
  /** Delays before each retry of the webhook. */
  webhook_backoff_ms: readonly number[];
}

export const NOTIFY_TIMING: NotifyTiming = { command_timeout_ms: 60_000, webhook_timeout_ms: 15_000, webhook_backoff_ms: [1_000, 3_000, 9_000] };

export async function notifyTerminal(
  cfg: NotifyConfig | undefined,
  input: NotifyInput,
  env: NodeJS.ProcessEnv,
  timing: NotifyTiming = NOTIFY_TIMING,
): Promise<NotifyOutcome[]> {
  if (!cfg) return [];
  const out: NotifyOutcome[] = [];
  if (cfg.command !== undefined && cfg.command.length > 0) out.push(await runCommand(cfg.command, input, env, timing));
  if (cfg.webhook !== undefined) out.push(await postWebhook(cfg.webhook, input, timing));
  return out;
}

async function runCommand(argv: readonly string[], input: NotifyInput, env: NodeJS.ProcessEnv, timing: NotifyTiming): Promise<NotifyOutcome> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return { channel: "command", ok: false, error: "notify.command is empty", attempts: 0 };
  try {
    const file = path.join(input.wave_dir, "report.json");
    writeFileSync(file, `${JSON.stringify(input.report, null, 2)}\n`, { mode: 0o600 });
    const r = await (
      await loadExeca()
    )(cmd, args, {
      env: { ...env, DX_BATCH_WAVE_ID: input.wave_id, DX_BATCH_WAVE_STATE: input.state, DX_BATCH_REPORT_JSON: file },
      reject: false,
      timeout: timing.command_timeout_ms,
      stdin: "ignore",
    });
    if (r.exitCode === 0) return { channel: "command", ok: true, error: null, attempts: 1 };
    const why = r.exitCode === undefined ? (r.shortMessage ?? "did not run") : `exit ${r.exitCode}${r.stderr ? `: ${r.stderr.trim()}` : ""}`;
    return { channel: "command", ok: false, error: `${argv.join(" ")}: ${why}`, attempts: 1 };
  } catch (e) {
    return { channel: "command", ok: false, error: e instanceof Error ? e.message : String(e), attempts: 1 };
  }
}

async function postWebhook(url: string, input: NotifyInput, timing: NotifyTiming): Promise<NotifyOutcome> {
  const body = JSON.stringify(input.report);
  let error = "not tried";
  const tries = timing.webhook_backoff_ms.length + 1;
  for (let i = 0; i < tries; i += 1) {
    if (i > 0) await new Promise((r) => setTimeout(r, timing.webhook_backoff_ms[i - 1]));
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", "x-dx-batch-wave-id": input.wave_id, "x-dx-batch-wave-state": input.state },
        body,
        signal: AbortSignal.timeout(timing.webhook_timeout_ms),
      });
      if (res.ok) return { channel: "webhook", ok: true, error: null, attempts: i + 1 };
      error = `HTTP ${res.status} ${res.statusText}`;
      // A client error other than a rate limit will not mend by itself.
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        return { channel: "webhook", ok: false, error: `POST ${originOf(url)} answered ${error}; a client error is not retried`, attempts: i + 1 };
      }
    } catch (e) {
      error = e instanceof Error ? (e.cause instanceof Error ? `${e.message}: ${e.cause.message}` : e.message) : String(e);
    }
  }
  // The URL may hold a secret: name only its origin.
  return { channel: "webhook", ok: false, error: `POST ${originOf(url)} failed after ${tries} attempts: ${error}`, attempts: tries };
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "(invalid URL)";
  }
}
