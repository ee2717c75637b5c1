// An in-process queue per key: `git worktree add` runs against one repository at a time, because
// git picks the admin directory name under .git/worktrees/ without a lock and two concurrent adds
// of worktrees with the same basename collide.

const tails = new Map<string, Promise<void>>();

export function serialize<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = tails.get(key) ?? Promise.resolve();
  const run = prev.then(fn);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  tails.set(key, tail);
  void tail.then(() => {
    if (tails.get(key) === tail) tails.delete(key);
  });
  return run;
}
