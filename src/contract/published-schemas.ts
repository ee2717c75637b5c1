import { configDocument } from "../config/schema.js";
import { renderSchemaFile, standaloneModule } from "../schema/kit.js";
import { STORE_CHECKS_FILE, storeChecksModule } from "../store/checks-source.js";
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

// Generated TypeScript sources, written and checked the same way: the config validator and the
// store's checks precompiled, so loading a config or reading a wave compiles no schema and loads
// neither ajv's compiler nor TypeBox (CLI start-up, src/cli/main.ts).
export const GENERATED_SOURCES: readonly PublishedSchema[] = [
  {
    file: "src/config/validator.generated.ts",
    text: () => standaloneModule(configDocument(), { name: "validateConfigFile", source: "src/config/schema.ts" }),
  },
  { file: STORE_CHECKS_FILE, text: storeChecksModule },
];
