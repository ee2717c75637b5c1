import { readTail } from "./fs-util.js";

// What the end of an agent's log says about a failed run. Only the tail is read: the cause of an
// exit is printed last, and the log may be tens of megabytes.

export const LOG_TAIL_BYTES = 64 * 1024;

const QUOTA = [
  /\b429\b/,
  /rate[ _-]?limit/i,
  /\bquota\b/i,
  /capacity[ _-]?exhausted/i,
  /RESOURCE_EXHAUSTED/,
  /usage limit/i,
  /too many requests/i,
];

export const mentionsQuota = (text: string): boolean => QUOTA.some((re) => re.test(text));

export const logTailMentionsQuota = (logPath: string): boolean => mentionsQuota(readTail(logPath, LOG_TAIL_BYTES));
