// git picks the admin directory name under .git/worktrees/ without a lock, so two concurrent
// `git worktree add` of worktrees with the same basename collide: they run one at a time per repo.
export { serialize } from "../shared/key-queue.js";
