import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import net from "node:net";
import path from "node:path";

// A throw-away redis-server for one test: a free port on 127.0.0.1, its own directory, append-only
// persistence on request (fsync on every write, so a SIGKILL loses nothing), stopped at the end.

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  pid(): number;
  /** SIGKILL (a crash) or SIGTERM, then start again on the same port and directory. */
  restart(o?: { signal?: NodeJS.Signals; downMs?: number }): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    let buf = "";
    const done = (v: boolean): void => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(500, () => done(false));
    sock.once("error", () => done(false));
    sock.on("data", (d) => {
      buf += d.toString();
      if (buf.includes("PONG")) done(true);
      else if (buf.includes("LOADING") || buf.startsWith("-")) done(false);
    });
    sock.once("connect", () => sock.write("PING\r\n"));
  });
}

export async function startRedis(root: string, o: { appendonly?: boolean } = {}): Promise<RedisServer> {
  const dir = path.join(root, "redis");
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  let child: ChildProcess | null = null;
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    o.appendonly === true ? "yes" : "no",
    "--appendfsync",
    "always",
    "--maxmemory-policy",
    "noeviction",
    "--daemonize",
    "no",
    "--logfile",
    path.join(dir, "redis.log"),
  ];
  const start = async (): Promise<void> => {
    const c = spawn("redis-server", args, { stdio: "ignore", detached: true });
    child = c;
    const deadline = Date.now() + 15_000;
    while (!(await ping(port))) {
      if (c.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start (see ${dir}/redis.log)`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const kill = async (signal: NodeJS.Signals = "SIGKILL"): Promise<void> => {
    const c = child;
    if (c === null || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once("exit", () => r()));
    c.kill(signal);
    await exited;
    child = null;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    pid: () => child?.pid ?? 0,
    start,
    kill,
    async restart(r = {}) {
      await kill(r.signal ?? "SIGKILL");
      if (r.downMs) await new Promise((res) => setTimeout(res, r.downMs));
      await start();
    },
    stop: () => kill("SIGKILL"),
  };
}
