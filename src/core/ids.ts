// Identifier rules of SPEC §4, checked before an id is used in a path or a command.

const ITEM_ID = /^[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)+(?:\.[0-9]+)*$/;
const WAVE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
export const MAX_ITEM_ID_LENGTH = 64;
export const REVIEW_JOB_SUFFIX = "-review";

export const isValidItemId = (id: string): boolean => id.length <= MAX_ITEM_ID_LENGTH && ITEM_ID.test(id);
export const isValidWaveId = (id: string): boolean => WAVE_ID.test(id);

/** Runner job id: the item id for implement, `<item>-review` for review. */
export const jobIdFor = (itemId: string, phase: "implement" | "review"): string => (phase === "review" ? `${itemId}${REVIEW_JOB_SUFFIX}` : itemId);

/** The phase a bare job id implies (SPEC §9: a `-review` suffix means review). */
export const phaseOfJobId = (jobId: string): "implement" | "review" => (jobId.endsWith(REVIEW_JOB_SUFFIX) ? "review" : "implement");

/** Default wave id `wave-YYYYMMDD-HHMMSS-xxxx`; time and entropy come from the caller. */
export function defaultWaveId(nowIso: string, entropyHex: string): string {
  const d = nowIso.replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `wave-${d}-${entropyHex.slice(0, 4)}`;
}
