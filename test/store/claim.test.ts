import path from "node:path";
import { writeFileSync, mkdirSync } from "node:fs";
import { describe, expect } from "vitest";
import { claimItem, readClaim, releaseClaim, removeStaleClaim, type ItemClaim } from "../../src/store/claim.js";
import { createLayout } from "../../src/store/layout.js";
import { selfIdentity } from "../../src/store/proc.js";
import { it, tmp } from "../helpers/fixtures.js";

const layout = () => createLayout(path.join(tmp.make(), "art"));
const never = () => false;

describe("cross-wave item claim", () => {
  it("gives an item to one wave; another live wave is refused with the holder's wave id", () => {
    const l = layout();
    expect(claimItem(l, "bd-a1", { ...selfIdentity(), wave_id: "w1" }, never)).toEqual({ claimed: true });
    const r = claimItem(l, "bd-a1", { ...selfIdentity(), wave_id: "w2" }, never);
    expect(r).toMatchObject({ claimed: false, by_wave: "w1" });
    expect(readClaim(l, "bd-a1")).toMatchObject({ kind: "ok", holder: { wave_id: "w1", item_id: "bd-a1" } });
  });

  it("is re-entrant for the same wave, also from a new controller process", () => {
    const l = layout();
    claimItem(l, "bd-a1", { pid: 999_999, start_time: "old", host: "h", wave_id: "w1" }, never);
    expect(claimItem(l, "bd-a1", { ...selfIdentity(), wave_id: "w1" }, never)).toEqual({ claimed: true });
  });

  it("takes over a claim the caller's rule calls stale, and hands the claim to the rule", () => {
    const l = layout();
    claimItem(l, "bd-a1", { ...selfIdentity(), wave_id: "w-done" }, never);
    const seen: ItemClaim[] = [];
    const r = claimItem(l, "bd-a1", { ...selfIdentity(), wave_id: "w2" }, (c) => {
      seen.push(c);
      return c.wave_id === "w-done";
    });
    expect(r).toMatchObject({ claimed: true, tookOverFrom: { wave_id: "w-done" } });
    expect(seen.map((c) => c.wave_id)).toEqual(["w-done"]);
    expect(readClaim(l, "bd-a1")).toMatchObject({ kind: "ok", holder: { wave_id: "w2" } });
  });

  it("releases only for the wave that holds it", () => {
    const l = layout();
    claimItem(l, "bd-a1", { ...selfIdentity(), wave_id: "w1" }, never);
    expect(releaseClaim(l, "bd-a1", "w2")).toBe(false);
    expect(readClaim(l, "bd-a1").kind).toBe("ok");
    expect(releaseClaim(l, "bd-a1", "w1")).toBe(true);
    expect(readClaim(l, "bd-a1")).toEqual({ kind: "missing" });
    expect(releaseClaim(l, "bd-a1", "w1")).toBe(false);
    expect(claimItem(l, "bd-a1", { ...selfIdentity(), wave_id: "w2" }, never)).toEqual({ claimed: true });
  });

  it("replaces an unreadable claim; removeStaleClaim removes stale ones only", () => {
    const l = layout();
    mkdirSync(l.claimsDir(), { recursive: true });
    writeFileSync(l.claimPath("bd-a1"), "");
    expect(readClaim(l, "bd-a1").kind).toBe("corrupt");
    expect(claimItem(l, "bd-a1", { ...selfIdentity(), wave_id: "w1" }, never)).toEqual({ claimed: true });
    expect(removeStaleClaim(l, "bd-a1", never).removed).toBe(false);
    expect(removeStaleClaim(l, "bd-a1", (c) => c.wave_id === "w1")).toMatchObject({ removed: true, holder: { wave_id: "w1" } });
    expect(readClaim(l, "bd-a1")).toEqual({ kind: "missing" });
  });

  it("refuses an invalid item id before touching the file system", () => {
    expect(() => claimItem(layout(), "../x", { ...selfIdentity(), wave_id: "w1" }, never)).toThrow(expect.objectContaining({ code: "invalid_item_id" }));
  });
});
