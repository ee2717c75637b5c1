/** A broken promise between the shell and the core (an event out of order, an unknown item). */
export class CoreInvariantError extends Error {
  override readonly name = "CoreInvariantError";
}
