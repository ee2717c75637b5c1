import { readFileSync } from "node:fs";
import type { ContractSource } from "./port.js";
import { MAX_CONTRACT_BYTES, scanLogForContract } from "./contract-scan.js";
import { statQuiet } from "./fs-util.js";

// Delivery order of SPEC §7: the contract file first, else the last marker in the log. Both are
// size-checked before anything is read, so an oversized contract is refused, never loaded.

export async function readContractSource(contractFile: string | null, logPath: string | null): Promise<ContractSource> {
  if (contractFile !== null) {
    const st = statQuiet(contractFile);
    if (st?.isFile()) {
      if (st.size > MAX_CONTRACT_BYTES) {
        return { found: false, reason_code: "contract_too_large", detail: `contract file ${contractFile} is ${st.size} bytes (limit ${MAX_CONTRACT_BYTES})` };
      }
      const text = readFileSync(contractFile, "utf8").trim();
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
