import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { DxError } from "../errors.js";
import type { CommandContext } from "./main.js";

// `dx-batch serve`: the read-only dashboard, JSON/SSE API and /metrics (SPEC §15.2, issue #15).
// Runs until SIGINT or SIGTERM, then closes its connections and exits 0.

export const DEFAULT_SERVE_PORT = 7317;

const port = (v: string): number => {
  if (!/^[0-9]{1,5}$/.test(v) || Number(v) > 65535) throw new InvalidArgumentError("--port must be 0..65535");
  return Number(v);
};

export function registerServeCommand(program: Command, ctx: CommandContext): void {
  program
    .command("serve")
    .description("Serve a read-only dashboard, a JSON/SSE API and /metrics over the artifact dir (loopback unless given a token)")
    .option("--config <file>", "config file")
    .option("--port <n>", `TCP port (0: any free one)`, port, DEFAULT_SERVE_PORT)
    .option("--host <addr>", "address to bind; beyond loopback a token is required", "127.0.0.1")
    .option("--token <secret>", "require this bearer token on every request (default: $DX_BATCH_SERVE_TOKEN)")
    .option(
      "--otel-endpoint <url>",
      "export one OpenTelemetry span per attempt over OTLP/HTTP (default: otel.endpoint of the config, else $OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    .action(async (o: { config?: string; port: number; host: string; token?: string; otelEndpoint?: string }) => {
      const { openContext } = await import("../app/context.js");
      const { startServer } = await import("../serve/server.js");
      const c = openContext(ctx, { config: o.config });
      const token = o.token ?? ctx.env.DX_BATCH_SERVE_TOKEN ?? null;
      // Flags over the config file over the environment, as for every other setting (SPEC §3).
      const otelEndpoint = o.otelEndpoint ?? c.config.otel?.endpoint ?? (ctx.env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined);
      if (otelEndpoint !== undefined && !/^https?:\/\/[^\s]+$/.test(otelEndpoint))
        throw new DxError("usage", `--otel-endpoint must be an http(s) URL, not ${JSON.stringify(otelEndpoint)}`);
      let running;
      try {
        running = await startServer({
          config: c.config,
          configSource: c.configSource,
          host: o.host,
          port: o.port,
          token: token === "" ? null : token,
          otel: otelEndpoint ? { endpoint: otelEndpoint } : null,
        });
      } catch (e) {
        if (e instanceof Error && "code" in e && (e.code === "EADDRINUSE" || e.code === "EACCES" || e.code === "EADDRNOTAVAIL")) {
          throw new DxError("serve_listen_failed", `cannot listen on ${o.host}:${o.port}: ${e.message}`);
        }
        throw e;
      }
      ctx.io.out(
        `dx-batch serve: ${running.url}/ (artifact dir ${c.layout.root}${token ? ", token required" : ""}${otelEndpoint ? `, spans to ${otelEndpoint}` : ""}); Ctrl-C stops it`,
      );
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          resolve();
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
      await running.close();
    });
}
