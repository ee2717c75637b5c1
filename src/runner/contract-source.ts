import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, unlinkSync } from "node:fs";
import type { RunnerReason } from "../core/reasons.js";
import type { ContractSource } from "./port.js";
import { MAX_CONTRACT_BYTES, scanLogForContract } from "./contract-scan.js";
import { statQuiet, writeFileAtomicSync } from "./fs-util.js";
import { syncPaths } from "../store/sync-later.js";

// Delivery order of SPEC §7: the contract file first, else the last marker in the log. Both are
// size-checked before anything is read, so an oversized contract is refused, never loaded.
//
// The contract file is written by the agent, in a place the agent controls, so it is hostile
// input (issue #10): it may be a symlink to a secret, a hard link, a FIFO or a device. It is opened
// with O_NOFOLLOW (and O_NONBLOCK, so a FIFO cannot hang the controller), must be a regular file
// with one link and at most 1 MiB, is copied into the runner's files, then removed from the
// agent's reach. A refusal says where and why, never what: no byte of the file is ever quoted.

export interface ContractSourceOptions {
  /** Where the accepted contract file is copied (the runner's `<job>.contract.json`); the
   * agent's file is removed afterwards. Later reads of the same run find the copy. */
  copyTo?: string | null;
  /**
   * Leave the agent's file in place (the caller removes it once the contract is recorded durably,
   * `RunnerPort.contractRecorded`): the copy is then never the only one, so it is not fsynced.
   */
  keepOriginal?: boolean;
}

type FileRead = { kind: "absent" } | { kind: "text"; text: string } | { kind: "refused"; reason_code: RunnerReason; detail: string };

const O_READ_SAFE = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Read an agent-written file safely: never through a symlink, only a small regular file. */
export function readAgentFile(file: string, limit = MAX_CONTRACT_BYTES): FileRead {
  let lst;
  try {
    lst = lstatSync(file);
  } catch {
    return { kind: "absent" };
  }
  const unsafe = (why: string): FileRead => ({ kind: "refused", reason_code: "contract_file_unsafe", detail: `contract file ${file} ${why}; it was not read` });
  if (lst.isSymbolicLink()) return unsafe("is a symbolic link");
  if (!lst.isFile()) return unsafe("is not a regular file");
  let fd: number;
  try {
    fd = openSync(file, O_READ_SAFE);
  } catch (e) {
    const code = e instanceof Error && "code" in e ? String(e.code) : "error";
    return code === "ENOENT" ? { kind: "absent" } : unsafe(`could not be opened safely (${code})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return unsafe("is not a regular file");
    if (st.nlink > 1) return unsafe(`has ${st.nlink} hard links (a contract is a new file of its own)`);
    if (st.size > limit) {
      return { kind: "refused", reason_code: "contract_too_large", detail: `contract file ${file} is ${st.size} bytes (limit ${limit})` };
    }
    // Read at most limit+1 bytes: the file may grow between fstat and read.
    const buf = Buffer.alloc(Math.min(st.size, limit) + 1);
    let off = 0;
    for (;;) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n <= 0) break;
      off += n;
      if (off >= buf.length) break;
    }
    if (off > limit) return { kind: "refused", reason_code: "contract_too_large", detail: `contract file ${file} grew past ${limit} bytes while read` };
    return { kind: "text", text: buf.subarray(0, off).toString("utf8") };
  } finally {
    closeSync(fd);
  }
}

/** Take the agent's contract file: refuse it (and remove it) or copy it to `copyTo` and remove it. */
async function takeContractFile(contractFile: string, copyTo: string | null, keepOriginal: boolean): Promise<FileRead> {
  const same = copyTo !== null && copyTo === contractFile;
  const r = readAgentFile(contractFile);
  if (r.kind === "absent") return copyTo !== null && !same ? readAgentFile(copyTo) : r;
  if (copyTo !== null && !same) {
    // The copy replaces any earlier one; removing the agent's file keeps it from being changed
    // (or swapped for a symlink) after it was judged. The copy is the only one from then until
    // job_finished (which carries the contract) is in the ledger, so it is durable first: fsynced
    // off the event loop (issue #14), so other jobs' exits and dispatches go on meanwhile.
    if (r.kind === "text") {
      writeFileAtomicSync(copyTo, r.text, { fsync: false });
      if (keepOriginal) return r;
      await syncPaths([copyTo]);
    }
    try {
      unlinkSync(contractFile);
    } catch {
      // gone already: the copy (or the refusal) stands
    }
  }
  return r;
}

export async function readContractSource(contractFile: string | null, logPath: string | null, opts: ContractSourceOptions = {}): Promise<ContractSource> {
  if (contractFile !== null) {
    const r = await takeContractFile(contractFile, opts.copyTo ?? null, opts.keepOriginal === true);
    if (r.kind === "refused") return { found: false, reason_code: r.reason_code, detail: r.detail };
    if (r.kind === "text") {
      const text = r.text.trim();
      if (text !== "") return { found: true, source: "file", text };
    }
  }
  if (logPath !== null && statQuiet(logPath)?.isFile()) {
    const r = await scanLogForContract(logPath);
    if (r.kind === "found") return { found: true, source: "log", text: r.text };
    if (r.kind === "too_large") {
      return { found: false, reason_code: "contract_too_large", detail: `the last CONTRACT:JSON: in ${logPath} is over ${MAX_CONTRACT_BYTES} bytes` };
    }
  }
  return {
    found: false,
    reason_code: "contract_missing",
    detail: `no contract file${contractFile ? ` at ${contractFile}` : ""} and no CONTRACT:JSON: marker in ${logPath ?? "the log"}`,
  };
}
