import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

// The dashboard: a fixed set of files shipped in the package (web/), served by name from that
// list only, so no request path ever reaches the filesystem.

export const WEB_DIR = fileURLToPath(new URL("../../web/", import.meta.url));

const FILES: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
};

export interface StaticFile {
  body: Buffer;
  type: string;
}

export function staticFile(pathname: string, dir = WEB_DIR): StaticFile | null {
  const f = FILES[pathname];
  if (f === undefined) return null;
  try {
    return { body: readFileSync(path.join(dir, f.file)), type: f.type };
  } catch {
    return null;
  }
}
