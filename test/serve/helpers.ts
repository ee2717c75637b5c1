import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { loadConfig } from "../../src/config/load.js";
import { startServer, type RunningServer, type ServeOptions } from "../../src/serve/server.js";
import { test } from "../helpers/fixtures.js";
import { spawnNode, type CliProc } from "../helpers/procs.js";
import type { TempDirs } from "../helpers/tmp.js";
import { agentSandbox, cleanEnv, type Sandbox } from "../helpers/world.js";

// Serve tests: a real wave run by the real CLI, the server started in-process on a free port (or
// as the real `dx-batch serve`), and plain HTTP clients: no library between the test and the wire.

/**
 * A stand-in agent that takes its time (DX_TEST_AGENT_MS per run), prints a few log lines, then
 * writes its contract; a completed implement commits one line of notes/<item>.md in its worktree.
 * agent-a then prints its token usage and cost; agent-b says nothing of them.
 * Behaviour from the item id: ok-* approve; rev-* one revision; blk-* blocked.
 */
export const SLOW_AGENT = `
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
const e = process.env;
const item = e.DX_BATCH_ITEM_ID, attempt = Number(e.DX_BATCH_ATTEMPT), phase = e.DX_BATCH_PHASE;
console.log("agent " + process.argv[2] + ": " + phase + " " + item + " attempt " + attempt + " begins");
await new Promise((r) => setTimeout(r, Number(e.DX_TEST_AGENT_MS ?? "0")));
console.log("agent " + process.argv[2] + ": " + phase + " " + item + " attempt " + attempt + " ends");
const at = new Date().toISOString();
let c;
if (phase === "review") {
  const revise = item.startsWith("rev-") && attempt === 1;
  c = { phase: "review", beads_id: item, verdict: revise ? "REVISION_REQUIRED" : "APPROVED",
        findings: revise ? [{ type: "major", message: "add a test", file: "a.txt", line: 1 }] : [], timestamp: at, reviewer: process.argv[2] };
} else {
  // A completed attempt commits a change in its worktree (the cwd): an empty one is no_changes (issue #11).
  const done = !item.startsWith("blk-"), files = [], commits = [];
  if (done) {
    const git = (...a) => execFileSync("git", ["-c", "user.name=slow-agent", "-c", "user.email=agent@example.invalid", ...a], { encoding: "utf8" }).trim();
    mkdirSync("notes", { recursive: true });
    appendFileSync("notes/" + item + ".md", "- " + item + " attempt " + attempt + " by " + process.argv[2] + "\\n");
    git("add", "notes/" + item + ".md");
    git("commit", "-q", "-m", item + ": attempt " + attempt + " by " + process.argv[2]);
    files.push("notes/" + item + ".md");
    commits.push({ sha: git("rev-parse", "HEAD"), message: item + ": attempt " + attempt + " by " + process.argv[2] });
  }
  c = { phase: "implement", beads_id: item, status: done ? "completed" : "blocked",
        artifacts: { files_changed: files, commits }, summary: "attempt " + attempt + " by " + process.argv[2], timestamp: at };
}
// agent-a reports its usage as Claude Code's stream-json does before its end; agent-b reports none.
if (process.argv[2] === "agent-a") {
  console.log(JSON.stringify({ type: "result", subtype: "success", usage: { input_tokens: 1000 + attempt, output_tokens: 200, cache_read_input_tokens: 50 }, total_cost_usd: 0.0125 }));
}
writeFileSync(e.DX_BATCH_CONTRACT_FILE, JSON.stringify(c));
`;

/** A sandbox whose two providers run SLOW_AGENT (a git repo, worktrees created by --repo). */
export function slowSandbox(tmp: TempDirs, agentMs: number): Sandbox & { repo: string } {
  const sb = agentSandbox(tmp);
  const agent = path.join(sb.root, "slow-agent.mjs");
  writeFileSync(agent, SLOW_AGENT);
  const provider = (name: string) => ({ command: [process.execPath, agent, name], stdin: "none", env: { DX_TEST_AGENT_MS: String(agentMs) } });
  const file = {
    artifact_dir: sb.art,
    runner_log_dir: path.join(sb.root, "runner"),
    workspace_root: path.join(sb.root, "agents"),
    tracker: { type: "none" },
    repo: sb.repo,
    base: "main",
    stall_minutes: 2,
    max_runtime_minutes: 2,
    retry_chain: ["agent-a", "agent-b", "blocked"],
    providers: { "agent-a": provider("agent-a"), "agent-b": provider("agent-b") },
  };
  writeFileSync(sb.configPath, `${JSON.stringify(file, null, 2)}\n`);
  const { config } = loadConfig({ flags: { config: sb.configPath }, cwd: sb.root, env: {} });
  return { ...sb, config };
}

export async function serve(sb: Sandbox, o: Partial<ServeOptions> = {}): Promise<RunningServer> {
  return startServer({ config: sb.config, host: "127.0.0.1", port: 0, token: null, sse: { fallbackMs: 2000 }, ...o });
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One GET with the request target sent exactly as given (no URL normalisation). */
export function get(base: string, target: string, headers: Record<string, string> = {}): Promise<Reply> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: target, method: "GET", headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

export const getJson = async (base: string, target: string, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown }> => {
  const r = await get(base, target, headers);
  return { status: r.status, json: JSON.parse(r.body) };
};

export interface SseEvent {
  id: string | null;
  data: string;
}

/**
 * A minimal EventSource: connects, parses `id:`/`data:` fields, hands each event to `onEvent`;
 * `close()` drops the connection (as a client that goes away mid-stream).
 */
export function sse(base: string, target: string, headers: Record<string, string>, onEvent: (e: SseEvent) => void): { close(): void; status: Promise<number> } {
  const u = new URL(base);
  let buf = "";
  let id: string | null = null;
  let data: string[] = [];
  let resolveStatus: (n: number) => void = () => undefined;
  const status = new Promise<number>((r) => (resolveStatus = r));
  const req = request({ host: u.hostname, port: u.port, path: target, method: "GET", headers: { accept: "text/event-stream", ...headers } }, (res) => {
    resolveStatus(res.statusCode ?? 0);
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      buf += chunk;
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === "") {
          if (data.length > 0) onEvent({ id, data: data.join("\n") });
          data = [];
        } else if (line.startsWith("id: ")) id = line.slice(4);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
        nl = buf.indexOf("\n");
      }
    });
    res.on("error", () => undefined);
  });
  req.on("error", () => undefined);
  req.end();
  return { close: () => req.destroy(), status };
}

/** The shared fixtures (bin, with web/ beside dist/ as in the package; tmp; cleanup after each test). */
export { test as it };

/** `dx-batch …args` in the background (its own process group, killed by killAllChildren). */
export const startCli = (bin: string, args: readonly string[], cwd: string): CliProc => spawnNode(bin, args, { cwd, env: cleanEnv() });

export interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
}
export interface OtlpSpan {
  name: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: OtlpValue }[];
  status?: { code?: number };
}
export interface OtlpRequest {
  resourceSpans: { resource: { attributes: { key: string; value: OtlpValue }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}

/** A local OTLP/HTTP receiver (JSON encoding) that keeps what it is sent. */
export async function otlpReceiver(): Promise<{ url: string; requests: { path: string; type: string; body: OtlpRequest }[]; server: Server }> {
  const requests: { path: string; type: string; body: OtlpRequest }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      requests.push({ path: req.url ?? "", type: req.headers["content-type"] ?? "", body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as OtlpRequest });
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}

export const spanAttr = (s: OtlpSpan, key: string): string | number | undefined => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue === undefined ? undefined : Number(v.intValue));
};
