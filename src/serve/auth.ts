import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";

// Who may read. On loopback without a token: any local client, but only under a loopback Host
// name (a page on another site cannot reach it through DNS rebinding). Beyond loopback a token is
// required to start at all, and every request must carry it: `Authorization: Bearer <token>`, or
// `?token=` for a browser's EventSource and log links, which cannot set headers.

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h === "::1") return true;
  return isIP(h) === 4 && h.startsWith("127.");
}

const digest = (s: string): Buffer => createHash("sha256").update(s, "utf8").digest();

/** Constant-time comparison: equal-length digests, so neither length nor prefix leaks. */
export function tokenMatches(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

export function requestToken(req: IncomingMessage, q: URLSearchParams): string | null {
  const auth = req.headers.authorization;
  if (typeof auth === "string") {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m?.[1] !== undefined) return m[1];
  }
  return q.get("token");
}

/** null when allowed; else the reason code of the refusal. */
export function refusal(req: IncomingMessage, q: URLSearchParams, o: { token: string | null }): "token_required" | "token_invalid" | "host_not_allowed" | null {
  if (o.token !== null) {
    const given = requestToken(req, q);
    if (given === null) return "token_required";
    return tokenMatches(given, o.token) ? null : "token_invalid";
  }
  const hostHeader = req.headers.host ?? "";
  const name = hostHeader.startsWith("[") ? hostHeader.slice(0, hostHeader.indexOf("]") + 1) : (hostHeader.split(":")[0] ?? "");
  return isLoopbackHost(name) ? null : "host_not_allowed";
}
