import { spawn } from "node:child_process";
import { parentPort } from "node:worker_threads";
import { execGitHere } from "../workspace/git.js";
import type { ThreadAnswer, ThreadRequest } from "./spawn-thread.js";

// The spawn thread's side (spawn-thread.ts): it makes the spawn calls, whose wait for the child's
// exec then blocks this thread instead of the controller's loop, and reports back. Every handler
// answers exactly once per request, whatever happens: an exception here must not end the thread,
// which would leave the controller unsure whether a wrapper started.

const port = parentPort;
if (port === null) throw new Error("spawn-thread-worker.ts runs only as a worker thread");
const send = (m: ThreadAnswer): void => port.postMessage(m);

function startDetached(m: Extract<ThreadRequest, { kind: "spawn" }>): void {
  let child;
  try {
    child = spawn(m.file, [...m.args], { cwd: m.cwd, env: m.env, detached: true, stdio: [...m.stdio] });
  } catch (e) {
    send({ id: m.id, kind: "spawn-failed", message: e instanceof Error ? e.message : String(e) });
    return;
  }
  const pid = child.pid;
  if (pid === undefined) {
    // Not started (ENOENT, EACCES, a missing cwd): Node reports it as an error event.
    child.once("error", (e) => send({ id: m.id, kind: "spawn-failed", message: e.message }));
    return;
  }
  child.once("exit", () => send({ id: m.id, kind: "exit" }));
  child.unref();
  send({ id: m.id, kind: "spawned", pid });
}

port.on("message", (m: ThreadRequest) => {
  if (m.kind === "spawn") {
    startDetached(m);
    return;
  }
  execGitHere(m.args, m.opts).then(
    (result) => send({ id: m.id, kind: "git", result }),
    (e: unknown) => send({ id: m.id, kind: "git", result: { ok: false, exitCode: null, stdout: "", stderr: "", error: `git: ${String(e)}` } }),
  );
});
