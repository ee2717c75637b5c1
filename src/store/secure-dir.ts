import { lstatSync, mkdirSync, realpathSync, type Stats } from "node:fs";
import path from "node:path";
import { DxError } from "../errors.js";

// A state directory that is yours (issue #10, SPEC §15.5). Every root (artifact_dir,
// runner_log_dir, workspace_root) and every directory dx-batch opens or creates under it must be
// owned by the current user and not group- or world-writable; no path under a root may pass
// through a symlink. Otherwise another local user could have planted a directory (or a symlink)
// that dx-batch, perhaps running as root, would then write through.
//
// The roots are registered once per process (by whoever builds a layout or a runner context);
// `ensureSecureDir` then walks from the root down, creating what is missing with mode 0700 and
// checking what exists. A directory checked once stays trusted for the process: once it is ours
// and 0700, nobody else can swap what is inside it.

export const SECURE_DIR_MODE = 0o700;

const roots = new Set<string>();
const trusted = new Set<string>();

const uid = (): number | null => (typeof process.getuid === "function" ? process.getuid() : null);

/** Register a root whose subtree is held to the rules above. Returns the resolved root. */
export function registerStateRoot(root: string): string {
  const r = path.resolve(root);
  roots.add(r);
  return r;
}

/** The registered root that contains `p`, or null. */
function rootOf(p: string): string | null {
  let best: string | null = null;
  for (const r of roots) {
    if ((p === r || p.startsWith(`${r}${path.sep}`)) && (best === null || r.length > best.length)) best = r;
  }
  return best;
}

export function insecure(p: string, why: string, fix: string): DxError {
  return new DxError("artifact_dir_insecure", `${p} ${why}: dx-batch keeps its state only in directories that are yours alone`, {
    remedy: fix,
  });
}

/** Check one existing directory: ours, a real directory (not a link), and writable by us alone. */
export function checkOwnedDir(p: string, st: Stats, opts: { isRoot: boolean }): void {
  if (st.isSymbolicLink()) {
    throw insecure(p, "is a symbolic link", `remove the link (rm ${p}) and run again; dx-batch creates the directory itself`);
  }
  if (!st.isDirectory()) throw insecure(p, "is not a directory", `move ${p} away and run again`);
  const me = uid();
  if (me !== null && st.uid !== me) {
    throw insecure(
      p,
      `is owned by uid ${st.uid}, not by you (uid ${me})`,
      opts.isRoot
        ? `choose a root of your own (DX_BATCH_HOME, or artifact_dir / runner_log_dir / workspace_root in the config), or have ${p} removed`
        : `have ${p} removed (another user created it), then run again`,
    );
  }
  if ((st.mode & 0o022) !== 0) {
    throw insecure(p, `is group- or world-writable (mode ${(st.mode & 0o7777).toString(8).padStart(4, "0")})`, `chmod 700 ${p}`);
  }
}

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch (e) {
    if (e instanceof Error && "code" in e && (e.code === "ENOENT" || e.code === "ENOTDIR")) return null;
    throw permissionOr(e, p);
  }
}

/** EACCES/EPERM as `permission_denied` naming the path; anything else unchanged. */
export function permissionOr(e: unknown, p: string): unknown {
  if (e instanceof Error && "code" in e && (e.code === "EACCES" || e.code === "EPERM")) {
    return new DxError("permission_denied", `permission denied: ${p}`, { remedy: `check the owner and mode of ${p} and its parent directories`, cause: e });
  }
  return e;
}

/** The root itself may sit behind a symlink (a home on another disk); what it resolves to is checked. */
function checkRoot(root: string, create: boolean): boolean {
  if (trusted.has(root)) return true;
  let st = lstatOrNull(root);
  if (st === null) {
    if (!create) return false;
    try {
      mkdirSync(root, { recursive: true, mode: SECURE_DIR_MODE });
    } catch (e) {
      throw permissionOr(e, root);
    }
    st = lstatSync(root);
  }
  const real = st.isSymbolicLink() ? realpathSync(root) : root;
  checkOwnedDir(real, lstatSync(real), { isRoot: true });
  trusted.add(root);
  return true;
}

/**
 * Make `dir` exist (mode 0700) with every directory from its root down checked; outside every
 * registered root it is a plain `mkdir -p`. With `create: false` nothing is made and a missing
 * directory simply ends the walk (for readers, which must never write). With `rememberLeaf:
 * false`, `dir` itself is checked but not added to the trusted set (its parents are): for one
 * directory per item, checked at each dispatch, which would otherwise stay in the set for the
 * life of the process, one path for each of a wave's 10,000 items (issue #14, flat memory).
 */
export function ensureSecureDir(dir: string, opts: { create?: boolean; rememberLeaf?: boolean } = {}): void {
  const create = opts.create ?? true;
  const abs = path.resolve(dir);
  if (trusted.has(abs)) return;
  const root = rootOf(abs);
  if (root === null) {
    if (create) {
      try {
        mkdirSync(abs, { recursive: true, mode: SECURE_DIR_MODE });
      } catch (e) {
        throw permissionOr(e, abs);
      }
    }
    return;
  }
  if (!checkRoot(root, create)) return;
  let cur = root;
  for (const part of path
    .relative(root, abs)
    .split(path.sep)
    .filter((s) => s !== "")) {
    cur = path.join(cur, part);
    if (trusted.has(cur)) continue;
    let st = lstatOrNull(cur);
    if (st === null) {
      if (!create) return;
      try {
        mkdirSync(cur, { mode: SECURE_DIR_MODE });
      } catch (e) {
        if (!(e instanceof Error && "code" in e && e.code === "EEXIST")) throw permissionOr(e, cur);
      }
      st = lstatSync(cur);
    }
    checkOwnedDir(cur, st, { isRoot: false });
    if (cur !== abs || opts.rememberLeaf !== false) trusted.add(cur);
  }
}

/** Forget `dir` and everything under it (a caller removed it; the next ensure makes it again). */
export function forgetSecureDir(dir: string): void {
  const abs = path.resolve(dir);
  for (const t of [...trusted]) if (t === abs || t.startsWith(`${abs}${path.sep}`)) trusted.delete(t);
}

/** Forget everything checked (tests that change modes under a root already walked). */
export function forgetSecureDirs(): void {
  trusted.clear();
}
