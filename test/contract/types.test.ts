import { describe, expectTypeOf, it } from "vitest";
import type { ImplementContractStatic, ReviewContractStatic } from "../../src/contract/schemas.js";
import type { Finding, ImplementContract, ReviewContract } from "../../src/core/contract.js";
import type { Static } from "@sinclair/typebox";
import type { FindingSchema } from "../../src/contract/schemas.js";

// Compile-time: tsc fails here if the TypeBox schemas and the core's hand-written types drift.
type Mutual<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

const implement: Mutual<ImplementContractStatic, ImplementContract> = true;
const review: Mutual<ReviewContractStatic, ReviewContract> = true;
const finding: Mutual<Static<typeof FindingSchema>, Finding> = true;
const implementKeys: Mutual<keyof ImplementContractStatic, keyof ImplementContract> = true;
const reviewKeys: Mutual<keyof ReviewContractStatic, keyof ReviewContract> = true;

describe("contract schema static types", () => {
  it("are mutually assignable with src/core/contract.ts", () => {
    expectTypeOf(implement && review && finding && implementKeys && reviewKeys).toEqualTypeOf<true>();
    expectTypeOf<ImplementContractStatic>().toMatchTypeOf<ImplementContract>();
    expectTypeOf<ReviewContract>().toMatchTypeOf<ReviewContractStatic>();
  });
});
