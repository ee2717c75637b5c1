import { describe, expect, it } from "vitest";
import { reviewContract } from "../helpers/events.js";
import { World } from "./world.js";

describe("controller: dispatch", () => {
  it("runs one item through implement and review to completed, in SPEC §8 order", async () => {
    const w = new World({ items: ["it-1"] });
    await w.start();
    expect(w.story()).toEqual(["wave_created", "preflight_recorded", "wave_started", "item_dispatched it-1 implement 1", "job_started it-1 implement 1"]);
    // Lease and claim are held, the prompt is written before the job starts, and under its path.
    expect([...w.files.leases.keys()]).toEqual(["it-1+1"]);
    expect(w.files.claims).toEqual(new Set(["it-1"]));
    const spec = w.runner.starts[0];
    expect(spec?.run_instance).toBe(w.item("it-1").run_instance);
    expect(w.files.prompts.get(spec?.prompt_file ?? "")).toContain("it-1");
    expect(w.files.pids.size).toBe(1);

    w.runner.exit(w.runner.jobOf("it-1"));
    await w.clock.advance(0);
    expect(w.story(5)).toEqual(["job_finished it-1 implement 1", "item_dispatched it-1 review 1", "job_started it-1 review 1"]);
    expect(w.runner.starts[1]?.provider).toBe("prov-a");

    w.runner.exit(w.runner.jobOf("it-1", "review"), { contract: reviewContract("it-1", "APPROVED") });
    await w.clock.advance(0);
    expect(w.end).toEqual({ kind: "completed" });
    expect(w.state.status).toBe("completed");
    expect(w.item("it-1").status).toBe("approved");
    expect(w.files.leases.size).toBe(0);
    expect(w.files.claims.size).toBe(0);
    expect(w.files.pids.size).toBe(0);
    expect([...w.files.outcomes.keys()]).toEqual(["/mem/outcomes/it-1.implement.attempt1.outcome.json", "/mem/outcomes/it-1.review.attempt1.outcome.json"]);
    expect(w.files.snapshot).toEqual(w.state);
  });
});

describe("controller: dispatch order and caps", () => {
  it("fills max_parallel in item order, gives a freed slot to a review first, and holds a dependent until its dependency is approved", async () => {
    const w = new World({ items: ["a", "b", { id: "c", title: "c", depends_on: ["a"] }, "d"], policy: { max_parallel: 2 } });
    await w.start();
    expect(w.eventsOf("item_dispatched").map((e) => `${e.item_id}:${e.phase}`)).toEqual(["a:implement", "b:implement"]);

    w.runner.exit(w.runner.jobOf("a"));
    await w.clock.advance(0);
    // The review of a goes before d (reviews first) and c waits for a's approval.
    expect(w.eventsOf("item_dispatched").map((e) => `${e.item_id}:${e.phase}`)).toEqual(["a:implement", "b:implement", "a:review"]);

    w.runner.exit(w.runner.jobOf("a", "review"));
    await w.clock.advance(0);
    expect(w.item("a").status).toBe("approved");
    expect(
      w
        .eventsOf("item_dispatched")
        .map((e) => `${e.item_id}:${e.phase}`)
        .slice(3),
    ).toEqual(["c:implement"]);
    expect(w.state.items.filter((i) => i.run_instance !== null)).toHaveLength(2);
  });

  it("finishes jobs that exit together in one cycle, each event whole and in seq order", async () => {
    const w = new World({ items: ["a", "b", "c"], policy: { max_parallel: 3 } });
    await w.start();
    const before = w.files.events.length;
    for (const id of ["a", "b", "c"]) w.runner.exit(w.runner.jobOf(id));
    await w.clock.advance(0);
    const after = w.story(before);
    expect(after.filter((l) => l.startsWith("job_finished")).sort()).toEqual([
      "job_finished a implement 1",
      "job_finished b implement 1",
      "job_finished c implement 1",
    ]);
    expect(after.filter((l) => l.startsWith("item_dispatched")).sort()).toEqual([
      "item_dispatched a review 1",
      "item_dispatched b review 1",
      "item_dispatched c review 1",
    ]);
    expect(w.files.events.map((e) => e.seq)).toEqual(w.files.events.map((_, i) => i + 1));
    // Exactly one job_finished per run_instance, however many exit notices came in.
    expect(new Set(w.eventsOf("job_finished").map((e) => e.run_instance)).size).toBe(3);
  });

  it("blocks an item another live wave has claimed and goes on with the rest", async () => {
    const w = new World({ items: ["a", "b"] });
    w.files.claimedElsewhere.set("a", "w-other");
    await w.start();
    expect(w.item("a")).toMatchObject({ status: "blocked", reason_code: "item_claimed_by_other_wave:w-other" });
    expect(w.files.leases.has("a+1")).toBe(false);
    expect(w.item("b").status).toBe("implementing");
  });

  it("fails the item dispatch_failed when the runner cannot start its job", async () => {
    const w = new World({ items: ["a"] });
    w.runner.failStarts = "spawn ENOENT";
    await w.start();
    expect(w.item("a")).toMatchObject({ status: "failed", reason_code: "dispatch_failed" });
    expect(w.end).toEqual({ kind: "completed" });
  });
});

describe("controller: the exec-cap hold", () => {
  it("at the cap dispatches nothing, looks again after reattach_poll_ms, and dispatches once there is room", async () => {
    const w = new World({ items: ["a", "b"], timing: { exec_process_cap: 4 } });
    w.files.liveExec = 4;
    await w.start();
    expect(w.eventsOf("item_dispatched")).toEqual([]);
    expect(w.state.status).toBe("running");
    await w.clock.advance(10_000);
    expect(w.eventsOf("item_dispatched")).toEqual([]);
    w.files.liveExec = 3;
    await w.clock.advance(500);
    // One slot: one dispatch; the other waits for the next look.
    expect(w.eventsOf("item_dispatched").map((e) => e.item_id)).toEqual(["a"]);
    w.files.liveExec = 0;
    await w.clock.advance(500);
    expect(w.eventsOf("item_dispatched").map((e) => e.item_id)).toEqual(["a", "b"]);
    expect(w.files.execLockCalls).toBeGreaterThan(2);
  });

  it("above the cap at a later cycle fails the wave exec_saturation and leaves running jobs alone", async () => {
    const w = new World({ items: ["a", "b"], policy: { max_parallel: 1 }, timing: { exec_process_cap: 4 } });
    await w.start();
    w.files.liveExec = 5;
    w.runner.exit(w.runner.jobOf("a"));
    await w.clock.advance(0);
    expect(w.state).toMatchObject({ status: "failed", reason_code: "exec_saturation" });
    expect(w.end).toEqual({ kind: "failed", reason_code: "exec_saturation" });
    expect(w.runner.stops).toEqual([]);
  });
});

describe("controller: post-implement checks from the runner's look at the worktree (issue #14)", () => {
  const commits: string[] = [];
  const workspace = {
    commitLeftovers: (o: { item_id: string }) => {
      commits.push(o.item_id);
      return Promise.resolve({ auto_commit: "auto1", files: ["left.txt"], head: "auto1" });
    },
  };

  it("a clean worktree at exit is the whole story: no auto-commit, the range ends at the HEAD the runner saw", async () => {
    commits.length = 0;
    const w = new World({ items: ["it-1"], policy: { require_review: false }, workspace });
    await w.start();
    w.runner.exit(w.runner.jobOf("it-1"), { worktree_end: { head: "head2", clean: true } });
    await w.clock.advance(0);
    expect(commits).toEqual([]);
    expect(w.eventsOf("auto_commit")).toEqual([]);
    expect(w.eventsOf("job_finished")[0]?.range).toEqual({ from: "head1", to: "head2" });
    expect(w.item("it-1").status).toBe("approved");
  });

  it("an agent that committed nothing and left nothing fails no_changes without any git call", async () => {
    commits.length = 0;
    const w = new World({ items: ["it-1"], policy: { require_review: false, max_attempts: 1 }, workspace });
    await w.start();
    w.runner.exit(w.runner.jobOf("it-1"), { worktree_end: { head: "head1", clean: true } });
    await w.clock.advance(0);
    expect(commits).toEqual([]);
    expect(w.eventsOf("job_finished")[0]?.range).toEqual({ from: "head1", to: "head1" });
    expect(w.item("it-1").history[0]?.reason_code).toBe("no_changes");
    expect(w.item("it-1").status).not.toBe("approved");
  });

  it("leftovers (or no look at all) go through the workspace's auto-commit as before", async () => {
    commits.length = 0;
    for (const worktree_end of [{ head: "head2", clean: false }, undefined]) {
      const w = new World({ items: ["it-1"], policy: { require_review: false }, workspace });
      await w.start();
      w.runner.exit(w.runner.jobOf("it-1"), worktree_end === undefined ? {} : { worktree_end });
      await w.clock.advance(0);
      expect(w.eventsOf("auto_commit").map((e) => e.sha)).toEqual(["auto1"]);
      expect(w.eventsOf("job_finished")[0]?.range).toEqual({ from: "head1", to: "auto1" });
    }
    expect(commits).toEqual(["it-1", "it-1"]);
  });
});

describe("controller: the worktree's look at a start (issue #14)", () => {
  const SIG = "a".repeat(40);
  it("a checkout created just now, and a clean end of the last job, start the next job without a look; anything else does not", async () => {
    const w = new World({
      items: ["fresh", "found"],
      workspace: { resolve: (id) => Promise.resolve({ ok: true, path: `/mem/worktrees/${id}`, base_commit: "base0", created: id === "fresh" }) },
    });
    await w.start();
    const specOf = (item: string, phase: string) => w.runner.starts.filter((s) => s.item_id === item && s.phase === phase).at(-1);
    // Created by this dispatch at HEAD head1: clean, said so. Found already there: the runner looks.
    expect(specOf("fresh", "implement")?.worktree_look).toEqual({ head: "head1", dirty: 0, signature: null });
    expect(specOf("found", "implement")?.worktree_look).toBeUndefined();
    // A clean end with its look carries over to the review; a dirty one (an auto-commit follows) does not.
    w.runner.exit(w.runner.jobOf("fresh"), { worktree_end: { head: "head1", clean: true, dirty: 0, signature: SIG } });
    w.runner.exit(w.runner.jobOf("found"), { worktree_end: { head: "head1", clean: false, dirty: 2, signature: SIG } });
    await w.clock.advance(0);
    expect(specOf("fresh", "review")?.worktree_look).toEqual({ head: "head1", dirty: 0, signature: SIG });
    expect(specOf("found", "review")?.worktree_look).toBeUndefined();
  });

  it("a look whose HEAD is not the worktree's HEAD at dispatch is dropped", async () => {
    let head = "head1";
    const w = new World({
      items: ["moved"],
      workspace: {
        resolve: (id) => Promise.resolve({ ok: true, path: `/mem/worktrees/${id}`, base_commit: "base0", created: true }),
        head: () => Promise.resolve(head),
      },
    });
    await w.start();
    head = "head2"; // moved after the end look was taken
    w.runner.exit(w.runner.jobOf("moved"), { worktree_end: { head: "head1", clean: true, dirty: 0, signature: SIG } });
    await w.clock.advance(0);
    const review = w.runner.starts.find((s) => s.item_id === "moved" && s.phase === "review");
    expect(review).toBeDefined();
    expect(review?.worktree_look).toBeUndefined();
  });

  it("a checkout found rather than created is looked at ahead of its first dispatch: clean, its job starts without a look; dirty or unreadable, the runner looks", async () => {
    const looked: string[] = [];
    const w = new World({
      items: ["a", "b", "c", "d"],
      policy: { max_parallel: 1, require_review: false },
      workspace: {
        resolve: (id) => Promise.resolve({ ok: true, path: `/mem/worktrees/${id}`, base_commit: "base0", created: false }),
        look: (wt) => {
          looked.push(wt);
          const id = wt.split("/").pop();
          return Promise.resolve(id === "c" ? { head: "head1", clean: false } : id === "d" ? null : { head: "head1", clean: true });
        },
      },
    });
    await w.start();
    const specOf = (item: string) => w.runner.starts.find((s) => s.item_id === item);
    // The first dispatch had nothing ahead of it; the next item was looked at while a ran.
    expect(specOf("a")?.worktree_look).toBeUndefined();
    expect(looked).toEqual(["/mem/worktrees/b"]);
    for (const [done, next] of [
      ["a", "b"],
      ["b", "c"],
      ["c", "d"],
    ] as const) {
      w.runner.exit(w.runner.jobOf(done), {});
      await w.clock.advance(0);
      expect(specOf(next)).toBeDefined();
    }
    expect(specOf("b")?.worktree_look).toEqual({ head: "head1", dirty: 0, signature: null });
    expect(specOf("c")?.worktree_look).toBeUndefined();
    expect(specOf("d")?.worktree_look).toBeUndefined();
    expect(looked).toEqual(["/mem/worktrees/b", "/mem/worktrees/c", "/mem/worktrees/d"]);
  });
});

describe("controller: off the path from one job's exit to the next dispatch (issue #14)", () => {
  it("a review's diff is begun as its implement attempt ends, taken by the review's dispatch, and made again when HEAD moved since", async () => {
    let head = "head1";
    const diffs: { range: string; events: number }[] = [];
    const w: World = new World({
      items: ["rd", "moved"],
      workspace: {
        head: () => Promise.resolve(head),
        commitLeftovers: () => Promise.resolve({ auto_commit: null, head: "head2", files: [] }),
        diff: (_wt, from, to) => {
          diffs.push({ range: `${from ?? ""}..${to}`, events: w.files.events.length });
          return Promise.resolve({ stat: " a.txt | 1 +", patch: `+${to}\n`, bytes: 4, truncated: false });
        },
      },
    });
    await w.start();
    head = "head2";
    const finishedAt = () => w.files.events.length;
    const before = finishedAt();
    w.runner.exit(w.runner.jobOf("rd"), {});
    await w.clock.advance(0);
    // Begun before the implement's end was even written, and the review's prompt carries it.
    expect(diffs).toEqual([{ range: "base0..head2", events: before }]);
    const review = w.runner.starts.find((s) => s.item_id === "rd" && s.phase === "review");
    expect(review).toBeDefined();
    expect(w.files.prompts.get(review?.prompt_file ?? "")).toContain("+head2");
    // HEAD moved between the end and the review's dispatch: the range shown is the one found then.
    w.runner.exit(w.runner.jobOf("moved"), {});
    head = "head3";
    await w.clock.advance(0);
    expect(diffs.map((d) => d.range)).toEqual(["base0..head2", "base0..head2", "base0..head3"]);
    const review2 = w.runner.starts.find((s) => s.item_id === "moved" && s.phase === "review");
    expect(w.files.prompts.get(review2?.prompt_file ?? "")).toContain("+head3");
  });
  it("an item's tracker text is fetched while the jobs before it run, once, and its dispatch does not wait for it", async () => {
    const asked: { id: string; starts: number }[] = [];
    const w: World = new World({
      items: ["a", "b"],
      policy: { max_parallel: 1, require_review: false },
      tracker: {
        type: "file",
        ready: () => Promise.resolve([]),
        markInProgress: () => Promise.resolve({ ok: true, reason_code: null }),
        comment: () => Promise.resolve({ ok: true, reason_code: null }),
        close: () => Promise.resolve({ ok: true, reason_code: null }),
        versionCheck: () => Promise.resolve({ ok: true, reason_code: null, detail: "" }),
        show: (id) => {
          asked.push({ id, starts: w.runner.starts.length });
          return Promise.resolve({
            found: true,
            issue: { id, title: `title ${id}`, description: `do ${id}`, acceptance_criteria: "", status: "open", labels: [], blocked_by: [] },
          });
        },
      },
    });
    await w.start();
    // b was asked about while a's job ran (one start so far), not at b's dispatch.
    expect(asked).toContainEqual({ id: "b", starts: 1 });
    w.runner.exit(w.runner.jobOf("a"), {});
    await w.clock.advance(0);
    const b = w.runner.starts.find((s) => s.item_id === "b");
    expect(w.files.prompts.get(b?.prompt_file ?? "")).toContain("do b");
    expect(asked.filter((x) => x.id === "b")).toHaveLength(1);
  });
  it("a job that ends while others are being finished is finished in the same cycle, and its slot filled in the same dispatch", async () => {
    const w = new World({ items: ["a", "b", "c", "d"], policy: { max_parallel: 2, require_review: false } });
    await w.start();
    // b ends while a's end is being read, so after the cycle that finishes a has begun.
    const read = w.runner.readContract.bind(w.runner);
    w.runner.readContract = (ref) => {
      if (ref.job_id === "a") w.runner.exit(w.runner.jobOf("b"), {});
      return read(ref);
    };
    w.runner.exit(w.runner.jobOf("a"), {});
    await w.clock.advance(0);
    const order = w.files.events.flatMap((e) =>
      e.event === "job_finished" || (e.event === "item_dispatched" && (e.item_id === "c" || e.item_id === "d")) ? [`${e.event} ${e.item_id}`] : [],
    );
    expect(order).toEqual(["job_finished a", "job_finished b", "item_dispatched c", "item_dispatched d"]);
  });
});
