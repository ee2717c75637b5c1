// The supervisor that stands between dx-batch and an agent. It is a fixed POSIX sh script run as
// `sh -c SCRIPT sh <args…> <agent argv…>` (arguments are never interpolated into shell text),
// started as the leader of a new process group, so that:
//
// - the agent's exit code lands in `<job>.rc` (mode 0600) even when dx-batch has died: the
//   wrapper does not depend on its parent, and its stdio are files, not pipes to dx-batch. It is
//   written in place by the shell's own echo, with no `mv` (a process on the way from the agent's
//   exit to the rc, issue #14): one write of a few bytes onto a new file, so a reader finds it
//   empty for an instant (no exit code yet, as when it is absent: readIntFile) or whole;
// - SIGTERM sent to the whole group (stop) kills the agent but not the wrapper, which traps TERM
//   and still records the agent's status (143); the agent itself gets the default disposition
//   because a caught trap is reset in children. The wrapper ignores TERM from its first line (the
//   pump inherits that), and the runner's stop waits until it does (proc.ts waitSignalsHandled)
//   before its first SIGTERM, so a stop right after a start cannot kill the wrapper unarmed;
// - output goes through a pump that copies at most `cap` bytes to the log, then writes a
//   `log_size_capped` line and keeps only lines carrying the contract marker (bounded by fold, so
//   a 50 MB line never sits in memory). The pump keeps draining, so the agent never blocks or
//   dies of SIGPIPE because of the cap. head's stdout is stdio-buffered; where coreutils' stdbuf
//   exists it is made unbuffered, so log growth (a progress signal) is seen as it happens. The
//   pump removes the fifo's name once both ends are open (its redirection has returned), so the
//   agent starts without waiting for that `rm`;
// - a grandchild that keeps the output open cannot hold the rc back: after the agent exits the
//   wrapper waits for the pump at most 2 s (a `sleep` it waits on, which the pump's USR1 kills:
//   a USR1 that lands between the check and the wait must not cost the 2 s). The trap forgets the
//   timer before it is reaped, so a late USR1 never signals a pid that may have been reused. It
//   looks at the worktree (below) first, so git overlaps the pump's last steps;
// - given DX_BATCH_CGROUP_DIR, it moves itself into the job's cgroup before it forks the agent
//   (cgroup.ts), and the agent does not see the variable. The move is written by a background
//   subshell while the wrapper makes the fifo and starts the pump, and waited for just before the
//   agent's fork: a move into a cgroup waits in the kernel (5-18 ms measured here; an RCU grace
//   period, by our reading), which would otherwise delay every agent's start by that much (issue
//   #14). A pump forked before the move lands stays outside the leaf: it is the wrapper's own, in
//   its process group, and it ends at the agent's EOF. Its launcher removes the cgroup once it
//   sees the wrapper exit (start.ts), off the job's way to its end (issue #14). A wrapper whose
//   launcher is gone (its parent is not the launcher pid it was given, read from /proc/$$/stat by
//   the shell itself; without /proc, always) steps back out to the cgroup it came from and removes
//   the job's at the end, which works only if nothing of the job is left in it: a job whose
//   launcher died leaves no empty cgroup behind, one with escapees keeps it.
// - after a clean exit (0) it looks at the worktree once, before the rc: `git status
//   --porcelain=v2 --branch -z` into `<rc>.wt`, then a line with the commits since the attempt's
//   start (`git rev-list --count`). The two gits run side by side (the status in the background;
//   a USR1 from the pump may cut its `wait` short, hence the loop), so an implement's end waits
//   for the slower one, not for both (issue #14). It is written in place, with no rename (a
//   process): it is read only once the rc holds the exit code (check.ts), and the rc is written
//   after it. The runner's exit check and the controller's post-implement checks read that file
//   instead of spawning git from the controller (issue #14); without it (git failed, an older
//   wrapper) they run git themselves as before. git runs with the repository variables unset and
//   without optional locks, as the runner's own probe does.
//
// Positional parameters: $1 tools PATH (for head, fold, grep, git, …), $2 rc path, $3 cap in
// bytes, $4 the worktree to look at after a clean exit ("" = none), $5 HEAD at the start ("" =
// unborn: all of HEAD's history), $6 the launcher's pid, then the agent argv. The agent runs with
// the PATH it was given in its environment.
export const WRAPPER_SCRIPT = `
trap '' TERM INT HUP
job_cgroup=\${DX_BATCH_CGROUP_DIR:-}
unset DX_BATCH_CGROUP_DIR
mover=
if [ -n "$job_cgroup" ]; then { echo $$ > "$job_cgroup/cgroup.procs"; } 2>/dev/null & mover=$!; fi
agent_path=$PATH
PATH=$1
rc=$2
cap=$3
wt=$4
base=$5
launcher=$6
shift 6
wrapper=$$
pump_done=
timer=
trap 'pump_done=1; if [ -n "$timer" ]; then kill -KILL "$timer" 2>/dev/null; fi' USR1
fifo="$rc.fifo"
if [ -e "$fifo" ] || [ -h "$fifo" ]; then rm -f "$fifo"; fi
mkfifo -m 600 "$fifo" || { echo "dx-batch wrapper: cannot create $fifo" >&2; (umask 077; echo 125 > "$rc"); exit 125; }
(
  rm -f "$fifo"
  if command -v stdbuf >/dev/null 2>&1; then stdbuf -o0 head -c "$cap"; else head -c "$cap"; fi
  if [ "$(head -c 1 | wc -c)" -gt 0 ]; then
    printf '\\n[dx-batch] log_size_capped: output beyond %s bytes discarded; contract lines kept\\n' "$cap"
    fold -b -w 1048576 | grep -a -F 'CONTRACT:JSON:' | tail -n 2
  fi
  kill -USR1 "$wrapper" 2>/dev/null
) < "$fifo" &
exec 3> "$fifo"
if [ -n "$mover" ]; then wait "$mover" || job_cgroup=; fi
trap ':' TERM INT HUP
PATH=$agent_path "$@" >&3 2>&3 3>&-
code=$?
exec 3>&-
if [ "$code" = 0 ] && [ -n "$wt" ]; then
  unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_COMMON_DIR GIT_OBJECT_DIRECTORY GIT_PREFIX GIT_NAMESPACE
  GIT_OPTIONAL_LOCKS=0; LC_ALL=C; export GIT_OPTIONAL_LOCKS LC_ALL
  if [ -n "$base" ]; then range="$base..HEAD"; else range=HEAD; fi
  umask 077
  git -C "$wt" status --porcelain=v2 --branch -z --untracked-files=normal > "$rc.wt" 2>/dev/null < /dev/null &
  look=$!
  n=$(git -C "$wt" rev-list --count "$range" 2>/dev/null < /dev/null) || n=0
  while :; do
    wait "$look"; st=$?
    [ "$st" -gt 128 ] && kill -0 "$look" 2>/dev/null || break
  done
  if [ "$st" = 0 ]; then echo "\${n:-0}" >> "$rc.wt"; else rm -f "$rc.wt"; fi
fi
if [ -z "$pump_done" ]; then
  sleep 2 &
  timer=$!
  [ -z "$pump_done" ] && wait "$timer"
  t=$timer; timer=
  kill -KILL "$t" 2>/dev/null; wait "$t" 2>/dev/null
fi
umask 077
echo "$code" > "$rc"
if [ -n "$job_cgroup" ]; then
  parent=
  { read -r _ _ _ parent _ < "/proc/$$/stat"; } 2>/dev/null
  if [ "$parent" != "$launcher" ]; then { echo $$ > "\${job_cgroup%/*/*}/cgroup.procs" && rmdir "$job_cgroup"; } 2>/dev/null; fi
fi
exit "$code"
`;

export const SHELL = "/bin/sh";

/** The tools the wrapper itself needs, found whatever PATH the agent is given. */
export function wrapperToolsPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"];
  const own = (env.PATH ?? "").split(":").filter((d) => d !== "");
  return [...new Set([...own, ...base])].join(":");
}

export interface WrapperOptions {
  rcPath: string;
  capBytes: number;
  argv: readonly string[];
  toolsPath: string;
  /** Look at this worktree after a clean exit (`<rc>.wt`); null: do not. */
  worktree?: string | null;
  /** HEAD when the job started (null: unborn), the base of the commit count. */
  headAtStart?: string | null;
  /** The process that spawns the wrapper and removes its cgroup when it exits; default: this one. */
  launcherPid?: number;
}

export function wrapperArgs(o: WrapperOptions): string[] {
  const cap = String(Math.max(1, Math.floor(o.capBytes)));
  return ["-c", WRAPPER_SCRIPT, "sh", o.toolsPath, o.rcPath, cap, o.worktree ?? "", o.headAtStart ?? "", String(o.launcherPid ?? process.pid), ...o.argv];
}

/** Where the wrapper leaves its look at the worktree after a clean exit. */
export const worktreeEndPath = (rcPath: string): string => `${rcPath}.wt`;
