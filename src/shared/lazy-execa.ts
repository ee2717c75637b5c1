import type { execa as Execa } from "execa";

// execa is loaded on the first call, not at start-up: about a hundred modules that a wave whose
// providers need no version probe, with no notify, tracker or pull request, never uses (issue #14).
let loaded: Promise<typeof Execa> | undefined;

export function loadExeca(): Promise<typeof Execa> {
  loaded ??= import("execa").then((m) => m.execa);
  return loaded;
}
