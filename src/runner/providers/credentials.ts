import type { ProviderConfig } from "../../config/types.js";

// Secrets by provider (issue #10, SPEC §15.5): each provider's agents see only the credentials
// that provider uses. Every other provider's known credential variables are removed from the
// environment an agent inherits, so a GLM token never reaches a codex or a command agent.

/** The credential variables each built-in provider reads (REFERENCE §3 and the preflights). */
export const BUILTIN_CREDENTIALS: Readonly<Record<string, readonly string[]>> = {
  opencode: [
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "OPENROUTER_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENERATIVE_AI_API_KEY",
    "ZAI_API_KEY",
    "ZHIPU_API_KEY",
    "GROQ_API_KEY",
    "DEEPSEEK_API_KEY",
    "XAI_API_KEY",
    "MISTRAL_API_KEY",
    "OPENCODE_API_KEY",
  ],
  "claude-code": ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"],
  // cc-glm resolves its token itself and hands it over as ANTHROPIC_AUTH_TOKEN (plan env).
  "cc-glm": ["CC_GLM_AUTH_TOKEN", "CC_GLM_TOKEN_FILE", "ZAI_API_KEY"],
  gemini: ["GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT"],
  codex: ["CODEX_API_KEY", "OPENAI_API_KEY"],
};

/** Every variable some provider claims as its credential: the built-ins' and each provider's `pass_env`. */
export function knownCredentials(providers: Readonly<Record<string, ProviderConfig>>): Set<string> {
  const all = new Set<string>();
  for (const vars of Object.values(BUILTIN_CREDENTIALS)) for (const v of vars) all.add(v);
  for (const p of Object.values(providers)) for (const v of p.pass_env ?? []) all.add(v);
  return all;
}

/** What `name`'s agents may inherit of those: its own built-in list (unless replaced by a command), plus its pass_env. */
export function ownCredentials(name: string, cfg: ProviderConfig | undefined): Set<string> {
  const own = new Set<string>(cfg?.pass_env ?? []);
  const isCommand = cfg?.command !== undefined && cfg.command.length > 0;
  if (!isCommand) for (const v of BUILTIN_CREDENTIALS[name] ?? []) own.add(v);
  return own;
}

/** The inherited variables to remove before launching an agent of `name`. */
export function foreignCredentials(name: string, providers: Readonly<Record<string, ProviderConfig>>): string[] {
  const cfg = Object.hasOwn(providers, name) ? providers[name] : undefined;
  const own = ownCredentials(name, cfg);
  return [...knownCredentials(providers)].filter((v) => !own.has(v)).sort();
}
