// Time arithmetic on the ISO strings events carry. Pure: the clock is read by the shell only.

export const toMs = (iso: string): number => Date.parse(iso);
export const toIso = (ms: number): string => new Date(ms).toISOString();
export const addMinutes = (iso: string, minutes: number): string => toIso(toMs(iso) + minutes * 60_000);
export const secondsBetween = (fromIso: string, toIsoStr: string): number => (toMs(toIsoStr) - toMs(fromIso)) / 1000;
