import { hostname } from "node:os";

/** The host id (SPEC §15.4): `$DX_BATCH_HOST_ID` when set, else the hostname. */
export function hostId(env: NodeJS.ProcessEnv): string {
  const v = env.DX_BATCH_HOST_ID;
  return v !== undefined && v !== "" ? v : hostname();
}
