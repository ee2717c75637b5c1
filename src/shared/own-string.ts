// V8 keeps a piece of 13 or more characters cut from a longer string (`slice`, `trim`, a regex
// match) as a view into the whole ("sliced string"). A 40-character commit id cut from git's
// output, or from a file read whole, keeps all of that text alive for as long as the id lives,
// and ids kept in the wave state live as long as the wave (issue #14, flat memory).
//
// ownString copies such a piece into a string of its own, and hands out one copy for equal
// strings seen recently: the items of a wave mostly share their base commit, which each item's
// state names up to three times (base_commit, head_at_dispatch, range.from).

const RECENT_MAX = 256;
const recent = new Map<string, string>();

export function ownString(s: string): string {
  const known = recent.get(s);
  if (known !== undefined) return known;
  const own = Buffer.from(s, "utf8").toString("utf8");
  // Bounded by clearing: ids repeat within a wave's recent dispatches, not across thousands.
  if (recent.size >= RECENT_MAX) recent.clear();
  recent.set(own, own);
  return own;
}
