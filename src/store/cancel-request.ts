import path from "node:path";
import { readTextIfExists, unlinkQuiet, writeFileDurable } from "./fsx.js";
import { isCancelRequest } from "./checks.generated.js";
import { parseJson } from "./exclusive.js";
import type { ProcessIdentity } from "./identity.js";

// A cancel asked of a controller this host may not signal (SPEC §15.4): it runs on another host,
// or its start time cannot be verified. `cancel` writes waves/<wave>/cancel.request and exits 0
// with `cancel_requested`; the live controller looks for the file at every heartbeat (and every
// cycle) and cancels the wave itself. The controller removes it once the cancel is recorded.

export const CANCEL_REQUEST_NAME = "cancel.request";

export interface CancelRequest {
  requested_at: string;
  by: ProcessIdentity;
}

export const cancelRequestPath = (waveDir: string): string => path.join(waveDir, CANCEL_REQUEST_NAME);

export function writeCancelRequest(waveDir: string, req: CancelRequest): string {
  const file = cancelRequestPath(waveDir);
  writeFileDurable(file, `${JSON.stringify(req)}\n`);
  return file;
}

/** The pending request, or null. An unreadable file still asks for a cancel (someone wrote it). */
export function readCancelRequest(waveDir: string): CancelRequest | "unreadable" | null {
  let raw: string | null;
  try {
    raw = readTextIfExists(cancelRequestPath(waveDir));
  } catch {
    return "unreadable";
  }
  if (raw === null) return null;
  const v = parseJson(raw);
  return isCancelRequest(v) ? v : "unreadable";
}

export function clearCancelRequest(waveDir: string): void {
  unlinkQuiet(cancelRequestPath(waveDir));
}
