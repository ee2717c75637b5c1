import { closeSync, constants, fsyncSync, openSync, statSync, unlinkSync } from "node:fs";
import { DxError, isDiskFull } from "../errors.js";
import { writeAll } from "./fsx.js";

// A full disk (issue #10). ENOSPC or EDQUOT anywhere pauses the wave `disk_full`; but recording the
// pause needs a little space too. Each wave keeps a small reserve file while a controller runs it:
// on a full disk it is deleted first, which frees room for the `wave_paused` event and the snapshot.

export const RESERVE_NAME = ".disk-reserve";
export const RESERVE_BYTES = 256 * 1024;
export { isDiskFull };

export const diskFullError = (where: string, cause?: unknown): DxError =>
  new DxError("disk_full", `no space left on the disk of ${where}`, { remedy: "free space on that disk, then dx-batch resume", cause });

/** Make sure the reserve is there, whole; refused with `disk_full` when the disk cannot hold it. */
export function ensureReserve(file: string): void {
  try {
    if (statSync(file).size >= RESERVE_BYTES) return;
  } catch {
    // missing: written below
  }
  let fd: number | null = null;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
    writeAll(fd, Buffer.alloc(RESERVE_BYTES));
    fsyncSync(fd);
  } catch (e) {
    if (fd !== null) closeSync(fd);
    fd = null;
    releaseReserve(file);
    if (isDiskFull(e)) throw diskFullError(file, e);
    throw e;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** Free the reserve (on a full disk, before recording the pause; and when the controller ends). */
export function releaseReserve(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // not there: nothing to free
  }
}
