import type { Static } from "@sinclair/typebox";
import { describe, expectTypeOf, it } from "vitest";
import type { ConfigFile, ProviderSchema, RunnerSchema, TrackerSchema } from "../../src/config/schema.js";
import type { ProviderConfig, ResolvedConfig, RunnerConfig, TrackerConfig } from "../../src/config/types.js";

// Compile-time: tsc fails on these lines if the file schema stops describing src/config/types.ts.
// `$schema` is the one extra key: editors use it to find the schema, the loader drops it.
// ResolvedConfig's newer keys (quota_retries_before_stop, max_quota_waits, budget) are optional
// there because ledgers recorded before them must still load; the loader fills the first two.

type Mutual<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type FileKeys = Omit<ConfigFile, "$schema">;

const fileIsPartialResolved: Mutual<FileKeys, Partial<ResolvedConfig>> = true;
const requiredFileIsResolved: Mutual<Required<FileKeys>, Required<ResolvedConfig>> = true;
const provider: Mutual<Static<typeof ProviderSchema>, ProviderConfig> = true;
const runner: Mutual<Static<typeof RunnerSchema>, RunnerConfig> = true;
const tracker: Mutual<Static<typeof TrackerSchema>, TrackerConfig> = true;
const sameKeys: Mutual<keyof FileKeys, keyof ResolvedConfig> = true;

describe("config schema static type", () => {
  it("equals src/config/types.ts", () => {
    expectTypeOf<Required<FileKeys>>().toEqualTypeOf<Required<ResolvedConfig>>();
    expectTypeOf(fileIsPartialResolved && requiredFileIsResolved && provider && runner && tracker && sameKeys).toEqualTypeOf<true>();
  });
});
