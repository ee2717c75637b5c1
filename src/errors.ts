// One error class with a stable reason code. Deep code throws it; only src/cli turns it into the
// one-line `error: <code>: <message>` + `remedy:` and an exit code.

export class DxError extends Error {
  readonly code: string;
  readonly remedy: string | null;
  readonly exitCode: number;
  /** Text printed whole after the error line, each line indented (git's or a tracker's own words). */
  readonly detail: string | null;

  constructor(code: string, message: string, opts: { remedy?: string | null; exitCode?: number; cause?: unknown; detail?: string | null } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "DxError";
    this.code = code;
    this.remedy = opts.remedy ?? null;
    this.exitCode = opts.exitCode ?? 1;
    this.detail = opts.detail ?? null;
  }
}

export const isDxError = (e: unknown): e is DxError => e instanceof DxError;
