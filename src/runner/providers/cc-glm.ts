import { readFileSync } from "node:fs";
import type { ProviderConfig } from "../../config/types.js";
import { DxError } from "../../errors.js";
import type { ProviderAvailability } from "../port.js";
import { CLAUDE_BIN, claudeArgv } from "./claude-code.js";
import { available, checkBinary, maxParallel, pickModel, unavailable } from "./common.js";
import type { LaunchContext, LaunchPlan, PreflightOptions, Provider } from "./types.js";

// Claude Code pointed at Z.ai's Anthropic-compatible endpoint with a GLM model (REFERENCE §3).
// The token is resolved here and handed to this provider's agent alone, through its environment;
// it never appears in argv, meta, logs or error messages (SPEC §13).

export const GLM_BASE_URL = "https://api.z.ai/api/anthropic";
export const GLM_DEFAULT_MODEL = "glm-4.6";

export interface GlmToken {
  token: string;
  /** Where it came from, safe to print. */
  source: "CC_GLM_AUTH_TOKEN" | "CC_GLM_TOKEN_FILE" | "ZAI_API_KEY";
}

/** CC_GLM_AUTH_TOKEN, else the file named by CC_GLM_TOKEN_FILE, else ZAI_API_KEY. */
export function resolveGlmToken(env: NodeJS.ProcessEnv): GlmToken | null {
  const direct = (env.CC_GLM_AUTH_TOKEN ?? "").trim();
  if (direct !== "") return { token: direct, source: "CC_GLM_AUTH_TOKEN" };
  const file = (env.CC_GLM_TOKEN_FILE ?? "").trim();
  if (file !== "") {
    try {
      const t = readFileSync(file, "utf8").trim();
      if (t !== "") return { token: t, source: "CC_GLM_TOKEN_FILE" };
    } catch {
      // An unreadable token file falls through to ZAI_API_KEY, as a missing one does.
    }
  }
  const zai = (env.ZAI_API_KEY ?? "").trim();
  return zai !== "" ? { token: zai, source: "ZAI_API_KEY" } : null;
}

const AUTH_MISSING = "no token: set CC_GLM_AUTH_TOKEN, CC_GLM_TOKEN_FILE (a file holding the token) or ZAI_API_KEY";

export function createCcGlm(cfg: ProviderConfig | undefined): Provider {
  const name = "cc-glm";
  return {
    name,
    kind: "builtin",
    max_parallel: maxParallel(cfg),
    default_model: cfg?.model ?? GLM_DEFAULT_MODEL,
    plan(ctx: LaunchContext): Promise<LaunchPlan> {
      const token = resolveGlmToken({ ...ctx.env, ...cfg?.env });
      if (token === null) return Promise.reject(new DxError(`${name}_auth_missing`, AUTH_MISSING, { exitCode: 21 }));
      const model = pickModel(ctx, cfg, GLM_DEFAULT_MODEL);
      const argv = claudeArgv(model, ctx);
      return Promise.resolve({
        argv,
        stdin: "prompt",
        // The config's env wins over these defaults (a proxy's base URL, a longer timeout).
        env: {
          ANTHROPIC_BASE_URL: GLM_BASE_URL,
          ANTHROPIC_AUTH_TOKEN: token.token,
          ANTHROPIC_DEFAULT_OPUS_MODEL: model,
          ANTHROPIC_DEFAULT_SONNET_MODEL: model,
          ANTHROPIC_DEFAULT_HAIKU_MODEL: model,
          API_TIMEOUT_MS: "3000000",
          ...cfg?.env,
        },
        // An inherited Anthropic credential would be sent to Z.ai instead of the GLM token.
        unset_env: ["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"],
        argv_for_meta: argv,
        model,
      });
    },
    async preflight(o: PreflightOptions): Promise<ProviderAvailability> {
      const bin = await checkBinary(name, CLAUDE_BIN, o.env, o.timeout_ms);
      if (!bin.ok) return bin.result;
      const token = resolveGlmToken({ ...o.env, ...cfg?.env });
      return token === null ? unavailable(name, `${name}_auth_missing`, AUTH_MISSING) : available(name);
    },
  };
}
