// An in-process queue per key: calls under one key run one after another, in call order, and a
// failure does not stop the calls queued behind it. Used for `git worktree add` per repository
// and for `bd` calls per database.

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
