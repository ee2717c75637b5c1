import type { ItemStatus } from "../core/status.js";

// Colour on a terminal, never in a pipe: NO_COLOR (any value) turns it off, FORCE_COLOR (other
// than "0") turns it on (https://no-color.org, https://force-color.org). A few ANSI SGR codes are
// all the live table needs, so no library is pulled in for them.

export function colourEnabled(env: NodeJS.ProcessEnv, isTty: boolean): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== "" && force !== "0" && force !== "false") return true;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (force === "0" || force === "false") return false;
  return isTty && env.TERM !== "dumb";
}

const sgr =
  (open: number, close: number) =>
  (s: string): string =>
    `\u001b[${open}m${s}\u001b[${close}m`;
export const paint = {
  green: sgr(32, 39),
  red: sgr(31, 39),
  yellow: sgr(33, 39),
  cyan: sgr(36, 39),
  dim: sgr(2, 22),
  bold: sgr(1, 22),
} as const;

const STATUS_COLOUR: Record<ItemStatus, ((s: string) => string) | null> = {
  pending: null,
  implementing: paint.cyan,
  reviewing: paint.cyan,
  revision_required: paint.yellow,
  approved: paint.green,
  blocked: paint.red,
  failed: paint.red,
  cancelled: paint.dim,
};

/** The text of an item status cell, coloured for its status. */
export function paintStatus(status: ItemStatus, text: string): string {
  const f = STATUS_COLOUR[status];
  return f === null ? text : f(text);
}
