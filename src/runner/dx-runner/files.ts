import { readdirSync } from "node:fs";
import path from "node:path";
import { readContractSource } from "../contract-source.js";
import { readIntFile } from "../fs-util.js";
import { assertJobId } from "../paths.js";
import type { ContractSource, JobRef } from "../port.js";
import { processAlive } from "../proc.js";
import { jobFile, knownKey, type AdapterContext } from "./context.js";

// What the adapter reads from dx-runner's files directly: contracts and live pids.

/** A JobRef may carry the contract path it was started with; the port's own JobRef does not. */
export type AdapterJobRef = JobRef & { contract_file?: string };

export async function readContractViaFiles(ctx: AdapterContext, ref: AdapterJobRef): Promise<ContractSource> {
  assertJobId(ref.job_id);
  const k = ctx.known.get(knownKey(ref.provider, ref.job_id));
  if (k !== undefined && k.run_instance !== ref.run_instance) {
    return { found: false, reason_code: "run_instance_mismatch", detail: `the last start of ${ref.job_id} here was run ${k.run_instance}` };
  }
  const contractFile = ref.contract_file ?? k?.contract_file ?? null;
  const log = k?.log_path ?? jobFile(ctx, ref.provider, ref.job_id, "log");
  return readContractSource(contractFile, log);
}

export async function livePidsInFiles(logBase: string): Promise<number[]> {
  const pids = new Set<number>();
  let providers: string[] = [];
  try {
    providers = readdirSync(logBase);
  } catch {
    return [];
  }
  for (const prov of providers) {
    let files: string[] = [];
    try {
      files = readdirSync(path.join(logBase, prov)).filter((f) => f.endsWith(".pid"));
    } catch {
      continue;
    }
    for (const f of files) {
      const pid = readIntFile(path.join(logBase, prov, f));
      if (pid !== null && (await processAlive(pid, null))) pids.add(pid);
    }
  }
  return [...pids].sort((a, b) => a - b);
}
