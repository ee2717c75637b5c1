// Waiting in tests: poll a condition with a generous ceiling (2 noisy cores), never a bare sleep
// where an event (a ledger line, a file, an exit) can be waited on instead.

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
}

type Maybe<T> = T | null | undefined | false;

/** Poll `fn` until it returns a value other than null, undefined or false; throws naming `what` on timeout. */
export async function waitFor<T>(fn: () => Maybe<T> | Promise<Maybe<T>>, what: string, o: WaitOptions = {}): Promise<T> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(o.intervalMs ?? 25);
  }
}

/** Run `fn` over `inputs` with at most `n` at a time, results in input order. */
export async function pool<T, R>(inputs: readonly T[], n: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(inputs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < inputs.length; i = next++) out[i] = await fn(inputs[i] as T, i);
  };
  await Promise.all(Array.from({ length: Math.min(n, inputs.length) }, worker));
  return out;
}
