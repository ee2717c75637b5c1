#!/usr/bin/env node
// What the controller allocated, by call site, from an allocation profile written by
// `node bench/scale.mjs --heap-watch --keep` (<temp>/controller.alloc.json): the sites that
// allocate most per item, by their own allocations and with their callees. Garbage counts: an
// allocation that dies young still costs a scavenge, and one that lives a while is promoted and
// grows the old space until a mark-compact.
//   node bench/alloc-summary.mjs FILE ITEMS [--top N]
import { readFileSync } from "node:fs";
import * as L from "./lib.mjs";

const flags = L.parseFlags(process.argv.slice(2));
const [file, itemsArg] = process.argv.slice(2).filter((a, i, all) => !a.startsWith("--") && !all[i - 1]?.startsWith("--top"));
if (!file || !itemsArg) throw new Error("usage: node bench/alloc-summary.mjs FILE ITEMS [--top N]");
const items = Number(itemsArg);
const top = Number(flags.top ?? 25);
const profile = JSON.parse(readFileSync(file, "utf8"));

const site = (f) => `${f.functionName || "(anonymous)"} ${f.url.replace(/.*\/dist\//, "").replace(/^node:internal\//, "node:")}:${f.lineNumber + 1}`;
const stacks = new Map();
(function index(n, above) {
  const here = [...above, site(n.callFrame)];
  stacks.set(n.id, here);
  for (const c of n.children) index(c, here);
})(profile.head, []);

const own = new Map();
const withCallees = new Map();
let total = 0;
for (const s of profile.samples) {
  const st = stacks.get(s.nodeId) ?? [];
  const leaf = st.at(-1) ?? "(unknown)";
  own.set(leaf, (own.get(leaf) ?? 0) + s.size);
  for (const k of new Set(st)) if (k.includes(".js:") && !k.includes(" node:")) withCallees.set(k, (withCallees.get(k) ?? 0) + s.size);
  total += s.size;
}
const rows = (m) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, v]) => `${(v / 1024 / items).toFixed(1).padStart(9)}  ${((100 * v) / total).toFixed(1).padStart(5)}  ${k}`)
    .join("\n");
console.log(`${file}: ${(total / 1e6).toFixed(0)} MB allocated (sampled), ${(total / 1024 / items).toFixed(0)} KiB per item over ${items} items`);
console.log(`\nKiB/item      %  allocating site (own allocations)\n${rows(own)}`);
console.log(`\nKiB/item      %  dist/ function (with its callees)\n${rows(withCallees)}`);
