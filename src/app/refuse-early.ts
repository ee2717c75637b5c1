import { existsSync, statSync } from "node:fs";
import type { ResolvedConfig } from "../config/types.js";
import { chainProviders, reviewCandidates } from "../core/retry.js";
import type { WavePolicy } from "../core/policy.js";
import type { RunnerReason } from "../core/reasons.js";
import { DxError, ExitCode } from "../errors.js";
import type { ProviderAvailability, RunnerPort } from "../runner/port.js";
import { createProviderRegistry } from "../runner/providers/index.js";
import { git } from "../workspace/git.js";
import { gitDirOf } from "../workspace/git-files.js";

// Refusals that come before the wave exists, so a mistake costs nothing and leaves nothing behind
// (issue #13): a --repo that is not a checkout, items the tracker does not know, a provider name
// nobody defines, and no provider of the chain passing preflight.

/** `repo` must be a git checkout: otherwise every item would fail `worktree_create_failed`. */
export async function refuseBadRepo(repo: string | null | undefined): Promise<void> {
  if (repo === null || repo === undefined) return;
  if (!existsSync(repo) || !statSync(repo).isDirectory()) {
    throw new DxError("repo_invalid", `--repo ${repo} is not a directory`, { remedy: "pass the path of a git checkout with --repo (or `repo` in the config)" });
  }
  // A `.git` that leads to a git dir is a checkout's top: no git to ask (a process before the wave).
  if (gitDirOf(repo) !== undefined) return;
  const r = await git(["rev-parse", "--show-toplevel"], { cwd: repo, timeoutMs: 20_000 });
  if (!r.ok) {
    throw new DxError("repo_invalid", `--repo ${repo} is not a git checkout`, {
      detail: r.error ?? r.stderr,
      remedy: "pass the path of a git checkout with --repo (or `repo` in the config); create one with `git init` or `git clone`",
    });
  }
}

/** Items the tracker does not know, all named at once; `--allow-missing` drops them instead. */
export function refuseUnknownItems(unknown: readonly { id: string; detail: string }[], allowMissing: boolean): void {
  if (unknown.length === 0 || allowMissing) return;
  throw new DxError(
    "item_not_found",
    `the tracker does not know ${unknown.length === 1 ? "item" : `${unknown.length} items`}: ${unknown.map((u) => u.id).join(", ")}`,
    {
      detail: unknown.map((u) => `${u.id}: ${u.detail}`).join("\n"),
      remedy: "check the ids (and the tracker in the config), or pass --allow-missing to run the rest",
    },
  );
}

/** Every name in retry_chain (and review_provider) must be a built-in provider or one defined in config. */
export function refuseUnknownProviders(config: ResolvedConfig, policy: WavePolicy): void {
  // An installed dx-runner knows its own providers; only the built-in runner's are checked here.
  if (config.runner.type !== "builtin") return;
  const registry = createProviderRegistry(config.providers);
  const names = [...chainProviders(policy), ...(config.review_provider ? [config.review_provider] : [])];
  const unknown = [...new Set(names.filter((n) => registry.get(n) === null))];
  if (unknown.length === 0) return;
  throw new DxError("unknown_provider", `no provider named ${unknown.join(", ")} (retry_chain: ${config.retry_chain.join(", ")})`, {
    remedy: `use one of ${registry.names().join(", ")}, or define it under providers.<name>.command in the config`,
    // A refused start exits 1 (SPEC §15.1); 20 is `dx-batch runner start`'s code, as dx-runner's.
    exitCode: ExitCode.failure,
  });
}

export type PreflightResults = Record<string, { ok: boolean; reason_code: RunnerReason | null; detail?: string | null }>;

/** Preflight every provider the wave may use (offline, nothing spent). */
export async function preflightAll(runner: RunnerPort, providers: readonly string[]): Promise<{ results: PreflightResults; raw: ProviderAvailability[] }> {
  const raw: ProviderAvailability[] = [];
  for (const p of providers) raw.push(await runner.preflight(p));
  const results: PreflightResults = {};
  for (const r of raw) results[r.provider] = { ok: r.ok, reason_code: r.reason_code, detail: r.detail };
  return { results, raw };
}

/** What to do about one provider's failed preflight. */
export function preflightRemedy(provider: string, reason: string | null): string {
  const r = reason ?? "";
  if (r === "unknown_provider") return `define providers.${provider}.command in the config, or drop it from retry_chain`;
  if (r.endsWith("_binary_missing")) return `install ${provider}'s CLI or put it on PATH`;
  if (r.endsWith("_version_failed")) return `check that ${provider}'s CLI runs (its --version failed)`;
  if (r.endsWith("_auth_missing")) return `log ${provider} in, or set its key in the environment (README: Providers)`;
  if (r.endsWith("_preflight_failed")) return `make providers.${provider}.preflight exit 0`;
  return `check ${provider}'s installation, or drop it from retry_chain`;
}

/** No provider of the chain passed: refuse, naming each provider's reason and remedy. */
export function refuseNoProvider(policy: WavePolicy, raw: readonly ProviderAvailability[]): void {
  const chain = chainProviders(policy);
  if (raw.some((r) => r.ok && chain.includes(r.provider))) return;
  const lines = raw
    .filter((r) => chain.includes(r.provider))
    .map((r) => `${r.provider}: ${r.reason_code ?? "unavailable"}${r.detail ? ` (${r.detail})` : ""}; remedy: ${preflightRemedy(r.provider, r.reason_code)}`);
  throw new DxError("no_provider_available", `no provider of the retry chain (${chain.join(", ")}) passed preflight; nothing was written`, {
    detail: lines.join("\n"),
    remedy: "fix one provider as said above, or pass --keep-failed to record the failed wave anyway",
  });
}

/** The providers a wave may use: its chain and its reviewers. */
export const preflightProviders = (policy: WavePolicy): string[] => [...new Set([...chainProviders(policy), ...reviewCandidates(policy, null)])];
