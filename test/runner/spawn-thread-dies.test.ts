import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, expect, it } from "vitest";
import { isDxError } from "../../src/errors.js";
import { createBuiltinRunner } from "../../src/runner/builtin.js";
import { scanMarked } from "../../src/runner/marked-procs.js";
import { spawnThreadUp, startSpawnThread } from "../../src/runner/spawn-thread.js";
import { REPO } from "../helpers/build.js";
import { cleanup, fixture, fixtureEnv, makeWorkspace, waitFor } from "./helpers/env.js";

// The spawn thread ends after it started a wrapper and before it said so (a thread killed by a
// bug or by its heap limit): the start is unknown, so the runner stops whatever carries the run's
// marker before it reports the start failed. No agent is left running for an item the controller
// then settles as failed.

afterEach(cleanup);

it("a start the thread never answered is looked for and stopped, then fails spawn_failed", async () => {
  startSpawnThread({ env: {}, workerFile: pathToFileURL(path.join(REPO, "test", "fixtures", "spawn-thread-dies.mjs")) });
  expect(await spawnThreadUp()).toBe(true);
  const ws = makeWorkspace();
  const runner = createBuiltinRunner({
    log_dir: ws.logDir,
    providers: { long: { command: [fixture("fake-sleep"), "60"] } },
    workspace: { workspace_root: ws.root, allowed_prefixes: [], protected_paths: [] },
    max_log_mb: 50,
    env: fixtureEnv(),
    wave_id: "wave-test",
    stop_grace_ms: 2_000,
  });
  ws.worktree("bd-dt1");
  const runInstance = `ri-dies-${process.pid}`;
  let err: unknown = null;
  try {
    await runner.start({
      job_id: "bd-dt1",
      item_id: "bd-dt1",
      wave_id: "wave-test",
      phase: "implement",
      attempt: 1,
      provider: "long",
      run_instance: runInstance,
      worktree: path.join(ws.root, "bd-dt1", "repo"),
      prompt_file: ws.prompt("Implement bd-dt1.\n"),
      contract_file: path.join(ws.logDir, "bd-dt1.implement.contract.json"),
    });
  } catch (e) {
    err = e;
  }
  expect(isDxError(err) && err.code).toBe("spawn_failed");
  // Whatever the dead thread started (the wrapper, and the agent if it got that far) is gone.
  await waitFor(() => scanMarked().every((p) => p.run_instance !== runInstance), "no process with the run's marker");
});
