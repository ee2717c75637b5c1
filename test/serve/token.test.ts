import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { expectRefusal, runCli } from "../helpers/cli.js";
import { buildCli } from "../helpers/build.js";
import { killAllChildren, spawnNode } from "../helpers/procs.js";
import { TempDirs } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait.js";
import { cleanEnv, sandbox, type Sandbox } from "../helpers/world.js";
import { get, serve } from "./helpers.js";

// Who may read: beyond loopback the real `dx-batch serve` refuses to start without a token, and
// then every request needs it; on loopback without a token, only loopback Host names are served.

const tmp = new TempDirs();
let bin = "";
const TOKEN = "s3cret-token-0123456789abcdef";

beforeAll(() => {
  bin = buildCli();
}, 180_000);
afterEach(() => killAllChildren());
afterAll(() => tmp.cleanup());

/** Start the real CLI's serve; resolves with its URL once it prints it. */
async function startServe(sb: Sandbox, args: string[], env: Record<string, string> = {}): Promise<string> {
  const c = spawnNode(bin, ["serve", "--config", sb.configPath, "--port", "0", ...args], { cwd: sb.root, env: cleanEnv(env) });
  const url = await waitFor(() => /(http:\/\/[^/ ]+)\//.exec(c.stdout())?.[1], "serve to print its URL");
  return url.replace("0.0.0.0", "127.0.0.1");
}

describe("beyond loopback", () => {
  it("refuses to start without a token", async () => {
    const sb = sandbox(tmp);
    const r = await runCli(bin, ["serve", "--config", sb.configPath, "--port", "0", "--host", "0.0.0.0"], { cwd: sb.root });
    expect(expectRefusal(r, "serve_token_required")).toContain("0.0.0.0");
  });

  it.each([
    ["--token", (sb: Sandbox) => startServe(sb, ["--host", "0.0.0.0", "--token", TOKEN])],
    ["DX_BATCH_SERVE_TOKEN", (sb: Sandbox) => startServe(sb, ["--host", "0.0.0.0"], { DX_BATCH_SERVE_TOKEN: TOKEN })],
  ])("with %s: every request needs the token", async (_how, start) => {
    const sb = sandbox(tmp);
    const url = await start(sb);
    for (const target of ["/", "/app.js", "/api/waves", "/api/waves/nope", "/api/workers", "/metrics", "/api/waves/w/events"]) {
      const none = await get(url, target);
      expect(none.status, target).toBe(401);
      expect(JSON.parse(none.body)).toMatchObject({ error: { reason_code: "token_required" } });
      const wrong = await get(url, target, { authorization: `Bearer ${TOKEN.slice(0, -1)}x` });
      expect(wrong.status, target).toBe(401);
      expect(JSON.parse(wrong.body)).toMatchObject({ error: { reason_code: "token_invalid" } });
      const prefix = await get(url, `${target}${target.includes("?") ? "&" : "?"}token=${TOKEN.slice(0, 8)}`);
      expect(prefix.status, target).toBe(401);
    }
    expect((await get(url, "/api/waves", { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await get(url, `/api/waves?token=${TOKEN}`)).status).toBe(200);
    const page = await get(url, `/?token=${TOKEN}`);
    expect(page.status).toBe(200);
    // A token in the address must not travel on in a Referer.
    expect(page.headers["referrer-policy"]).toBe("no-referrer");
    // Even from a loopback client and a loopback Host name: the token is what counts.
    expect((await get(url, "/api/waves", { host: "localhost" })).status).toBe(401);
  });
});

describe("on loopback", () => {
  it("serves loopback Host names without a token, and refuses others (DNS rebinding)", async () => {
    const sb = sandbox(tmp);
    const srv = await serve(sb);
    try {
      for (const host of ["127.0.0.1", `127.0.0.1:${srv.port}`, `localhost:${srv.port}`, `[::1]:${srv.port}`])
        expect((await get(srv.url, "/api/waves", { host })).status, host).toBe(200);
      const evil = await get(srv.url, "/api/waves", { host: `attacker.example:${srv.port}` });
      expect(evil.status).toBe(403);
      expect(JSON.parse(evil.body)).toMatchObject({ error: { reason_code: "host_not_allowed" } });
    } finally {
      await srv.close();
    }
  });
});
