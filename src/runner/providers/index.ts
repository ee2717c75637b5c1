import type { ProviderConfig } from "../../config/types.js";
import { createCcGlm } from "./cc-glm.js";
import { createClaudeCode } from "./claude-code.js";
import { createCodex } from "./codex.js";
import { createCommandProvider } from "./command.js";
import { foreignCredentials } from "./credentials.js";
import { createGemini } from "./gemini.js";
import { createOpencode } from "./opencode.js";
import type { Provider } from "./types.js";

// The built-in providers of SPEC §9, with config entries layered on top: an entry with `command`
// defines (or replaces) a command provider; an entry without one tunes a built-in's model, env
// and max_parallel.

export const BUILTIN_PROVIDERS = ["opencode", "claude-code", "cc-glm", "gemini", "codex"] as const;
export type BuiltinProviderName = (typeof BUILTIN_PROVIDERS)[number];

const BUILTIN: Record<BuiltinProviderName, (cfg: ProviderConfig | undefined) => Provider> = {
  opencode: createOpencode,
  "claude-code": createClaudeCode,
  "cc-glm": createCcGlm,
  gemini: createGemini,
  codex: createCodex,
};

const isBuiltin = (name: string): name is BuiltinProviderName => (BUILTIN_PROVIDERS as readonly string[]).includes(name);

export interface ProviderRegistry {
  /** null for a name that is neither built in nor defined with a command (`unknown_provider`). */
  get(name: string): Provider | null;
  names(): string[];
  /** Inherited variables `name`'s agents must not see: other providers' credentials (credentials.ts). */
  foreignCredentials(name: string): string[];
}

export function createProviderRegistry(config: Record<string, ProviderConfig> = {}): ProviderRegistry {
  const cache = new Map<string, Provider | null>();
  const build = (name: string): Provider | null => {
    const cfg = Object.hasOwn(config, name) ? config[name] : undefined;
    if (cfg?.command !== undefined && cfg.command.length > 0) return createCommandProvider(name, { ...cfg, command: cfg.command });
    return isBuiltin(name) ? BUILTIN[name](cfg) : null;
  };
  return {
    get(name) {
      if (!cache.has(name)) cache.set(name, build(name));
      return cache.get(name) ?? null;
    },
    foreignCredentials: (name) => foreignCredentials(name, config),
    names() {
      const extra = Object.keys(config).filter((n) => !isBuiltin(n) && build(n) !== null);
      return [...BUILTIN_PROVIDERS, ...extra];
    },
  };
}

export type { LaunchContext, LaunchPlan, PreflightOptions, Provider } from "./types.js";
export { resolveGlmToken } from "./cc-glm.js";
