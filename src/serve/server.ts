import { existsSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { ResolvedConfig } from "../config/types.js";
import { DxError, isDxError } from "../errors.js";
import { createLayout, type Layout } from "../store/layout.js";
import { isLoopbackHost, refusal } from "./auth.js";
import { checkItem, checkWave, reportDoc, statusDoc, wavesDoc } from "./documents.js";
import { badRequest, HttpError, notFound } from "./http-error.js";
import { logRoots, parseLogQuery, readAttemptLog } from "./logs.js";
import { Metrics } from "./metrics.js";
import { AttemptSpans, type OtelOptions } from "./otel.js";
import { lastEventId, streamEvents, type SseOptions } from "./sse.js";
import { staticFile, WEB_DIR } from "./static.js";
import { redisWorkerSource, workersDoc, type WorkerSource } from "./workers.js";

// `dx-batch serve`: a read-only HTTP server over the artifact dir. It only reads: no lock is
// taken, nothing is written, neither git nor a provider runs (a report's branch and head come
// from git's files, app/worktree-heads.ts). Every document is the CLI's own --json document, built by the same
// functions.

export interface ServeOptions {
  config: ResolvedConfig;
  /** The config file `serve` was given, named in next_command as the CLI's documents name it. */
  configSource?: string | null;
  host: string;
  /** 0: any free port. */
  port: number;
  token: string | null;
  /** The queue runner's workers; by default read from Redis when the config's runner is bullmq. */
  workers?: WorkerSource | null;
  sse?: SseOptions;
  webDir?: string;
  /** Export one OpenTelemetry span per attempt to this OTLP/HTTP endpoint. */
  otel?: OtelOptions | null;
}

export interface RunningServer {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** Refuse to listen beyond loopback without a token. */
export function checkBind(host: string, token: string | null): void {
  if (!isLoopbackHost(host) && (token === null || token.length === 0)) {
    throw new DxError("serve_token_required", `binding to ${host} (beyond loopback) needs a token`);
  }
  if (token !== null && token.length < 16) {
    throw new DxError("serve_token_too_short", "the token must be at least 16 characters");
  }
}

/** Path segments, decoded; a segment that could step out of its directory is refused. */
export function segments(pathname: string): string[] {
  const out: string[] = [];
  for (const raw of pathname.split("/").slice(1)) {
    let s: string;
    try {
      s = decodeURIComponent(raw);
    } catch {
      throw badRequest("invalid_path", "the path is not valid percent-encoding");
    }
    if (s === "." || s === ".." || /[/\\\0]/.test(s)) throw badRequest("path_traversal", "path segments may not be '.', '..' or contain '/', '\\' or NUL");
    out.push(s);
  }
  return out;
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer", ...extra });
  res.end(body);
}

const sendJson = (res: ServerResponse, status: number, value: unknown): void =>
  send(res, status, "application/json; charset=utf-8", `${JSON.stringify(value, null, 2)}\n`);

const sendError = (res: ServerResponse, status: number, code: string, message: string): void =>
  sendJson(res, status, { error: { reason_code: code, message } });

export function createHandler(o: ServeOptions & { layout: Layout; metrics: Metrics; workers: WorkerSource | null }) {
  const roots = () => logRoots([o.config.artifact_dir, o.config.runner_log_dir]);
  const webDir = o.webDir ?? WEB_DIR;
  const waveMustExist = (id: string): void => {
    if (!existsSync(o.layout.waveDir(checkWave(id)))) throw notFound("wave_not_found", `no wave ${id} in the artifact directory`);
  };

  async function route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    // The raw target, not url.pathname: URL parsing would quietly resolve `..` and `%2e%2e`.
    const seg = segments((req.url ?? "/").split("?")[0] ?? "/");
    const q = url.searchParams;
    if (seg[0] !== "api") {
      if (url.pathname === "/metrics") {
        send(res, 200, o.metrics.contentType, await o.metrics.render());
        return;
      }
      const f = staticFile(url.pathname, webDir);
      if (f === null) throw notFound("not_found", `no such page: ${url.pathname}`);
      send(res, 200, f.type, f.body, { "content-security-policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'" });
      return;
    }
    const [, coll, id, sub, item, leaf, ...rest] = seg;
    if (coll === "workers" && id === undefined) return sendJson(res, 200, await workersDoc(o.config.runner, o.workers));
    if (coll !== "waves" || rest.length > 0) throw notFound("not_found", `no such endpoint: ${url.pathname}`);
    if (id === undefined || id === "")
      return sendJson(res, 200, await wavesDoc(o.layout, { all: q.get("all") === "1" || q.get("all") === "true", configSource: o.configSource ?? null }));
    checkWave(id);
    if (sub === undefined) return sendJson(res, 200, await statusDoc(o.layout, id, o.configSource ?? null));
    if (sub === "report" && item === undefined) return sendJson(res, 200, await reportDoc(o.layout, id));
    if (sub === "events" && item === undefined) {
      const after = lastEventId(req, q);
      waveMustExist(id);
      streamEvents(o.layout, id, after, req, res, o.sse);
      return;
    }
    if (sub === "items" && item !== undefined && leaf === "logs") {
      checkItem(item);
      const lq = parseLogQuery(q);
      waveMustExist(id);
      const w = readAttemptLog(o.layout, roots(), id, item, lq);
      send(res, 200, "text/plain; charset=utf-8", w.text, {
        "x-log-phase": w.log.phase,
        "x-log-attempt": String(w.log.attempt),
        "x-log-size": String(w.size),
        "x-log-start": String(w.start),
        "x-log-end": String(w.end),
      });
      return;
    }
    throw notFound("not_found", `no such endpoint: ${url.pathname}`);
  }

  return (req: IncomingMessage, res: ServerResponse): void => {
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://serve.invalid");
    } catch {
      return sendError(res, 400, "invalid_path", "unparseable request target");
    }
    const denied = refusal(req, url.searchParams, { token: o.token });
    if (denied !== null) {
      res.setHeader("www-authenticate", 'Bearer realm="dx-batch"');
      return sendError(
        res,
        denied === "host_not_allowed" ? 403 : 401,
        denied,
        denied === "host_not_allowed" ? "only loopback host names are served without a token" : "a valid token is required",
      );
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return sendError(res, 405, "method_not_allowed", "this server is read-only");
    }
    route(req, res, url).catch((e: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (e instanceof HttpError) sendError(res, e.status, e.code, e.message);
      else if (isDxError(e)) sendError(res, e.code === "invalid_wave_id" || e.code === "invalid_item_id" ? 400 : 500, e.code, e.message);
      else sendError(res, 500, "orchestrator_exception", e instanceof Error ? e.message : String(e));
    });
  };
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  checkBind(o.host, o.token);
  const layout = createLayout(o.config.artifact_dir);
  const runner = o.config.runner;
  const workers = o.workers !== undefined ? o.workers : runner.type === "bullmq" ? redisWorkerSource(runner) : null;
  const metrics = new Metrics(layout, { workers });
  const server = createServer(createHandler({ ...o, layout, metrics, workers }));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const spans = o.otel ? await AttemptSpans.start(layout, o.otel) : null;
  const port = (server.address() as AddressInfo).port;
  const hostInUrl = o.host.includes(":") ? `[${o.host}]` : o.host;
  return {
    url: `http://${hostInUrl}:${port}`,
    port,
    server,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await spans?.close();
      await workers?.close();
    },
  };
}
