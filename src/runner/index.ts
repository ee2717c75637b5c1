// Public surface of the runner: the port, both adapters, and the provider registry.
export type * from "./port.js";
export { createBuiltinRunner, type BuiltinRunner, type BuiltinRunnerOptions, type BuiltinCheckOptions } from "./builtin.js";
export { createDxRunnerAdapter, type DxRunnerAdapterOptions, type AdapterJobRef } from "./dx-runner-adapter.js";
export { createRunner } from "./create.js";
export { createProviderRegistry, BUILTIN_PROVIDERS, resolveGlmToken, type Provider, type ProviderRegistry } from "./providers/index.js";
export { scanLogForContract, scanTextForContract, CONTRACT_MARKER, MAX_CONTRACT_BYTES } from "./contract-scan.js";
