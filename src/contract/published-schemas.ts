import { configDocument } from "../config/schema.js";
import { renderSchemaFile, standaloneModule } from "../schema/kit.js";
import { STORE_CHECKS_FILE, storeChecksModule } from "../store/checks-source.js";
import { ISSUE_CHECK_FILE, issueCheckModule } from "../tracker/issue-check-source.js";
import { implementContractDocument, reviewContractDocument } from "./schemas.js";

// Every JSON Schema the package ships under schemas/, with the text each file must hold.
// scripts/gen-schemas.mjs writes them; test/contract/published-schemas.test.ts checks them.

export interface PublishedSchema {
  /** Path relative to the package root. */
  file: string;
  text(): string;
}

export const PUBLISHED_SCHEMAS: readonly PublishedSchema[] = [
  { file: "schemas/implement-contract.schema.json", text: () => renderSchemaFile(implementContractDocument()) },
  { file: "schemas/review-contract.schema.json", text: () => renderSchemaFile(reviewContractDocument()) },
  { file: "schemas/config.schema.json", text: () => renderSchemaFile(configDocument()) },
];

// Generated TypeScript sources, written and checked the same way: the config and contract
// validators and the store's checks precompiled, so loading a config, judging a contract or
// reading a wave compiles no schema and loads neither ajv's compiler nor TypeBox (issue #14).
export const GENERATED_SOURCES: readonly PublishedSchema[] = [
  {
    file: "src/config/validator.generated.ts",
    text: () => standaloneModule(configDocument(), { name: "validateConfigFile", source: "src/config/schema.ts" }),
  },
  {
    file: "src/contract/implement-validator.generated.ts",
    text: () => standaloneModule(implementContractDocument(), { name: "validateImplementContract", source: "src/contract/schemas.ts" }),
  },
  {
    file: "src/contract/review-validator.generated.ts",
    text: () => standaloneModule(reviewContractDocument(), { name: "validateReviewContract", source: "src/contract/schemas.ts" }),
  },
  { file: STORE_CHECKS_FILE, text: storeChecksModule },
  { file: ISSUE_CHECK_FILE, text: issueCheckModule },
];
