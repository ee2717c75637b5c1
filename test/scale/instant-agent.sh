#!/bin/sh
# The scale smoke test's agent: instant, and cheap enough for 200 of them on 2 loaded cores (a
# node agent per item would cost more than the controller under test). Like
# test/fixtures/agents/scripted-agent.mjs it records its run in $SMOKE_RECORD_DIR/runs.jsonl (the
# journal the reliability invariants read), commits its own one-line file on the worktree's branch
# as real agents do, and delivers a valid contract (implement: completed; review: APPROVED).
#   $1 the provider name
provider=${1:-agent}
phase=${DX_BATCH_PHASE:-implement}
item=${DX_BATCH_ITEM_ID:-unknown-item}
attempt=${DX_BATCH_ATTEMPT:-1}
ts=2025-01-01T00:00:00Z
printf '{"event":"start","item":"%s","phase":"%s","attempt":%s,"provider":"%s","pid":%s,"wave":"%s","run_instance":"%s","at":"%s"}\n' \
  "$item" "$phase" "$attempt" "$provider" "$$" "$DX_BATCH_WAVE_ID" "$DX_BATCH_RUN_INSTANCE" "$ts" >> "$SMOKE_RECORD_DIR/runs.jsonl"
if [ "$phase" = review ]; then
  printf '{"phase":"review","beads_id":"%s","verdict":"APPROVED","findings":[],"timestamp":"%s"}' "$item" "$ts" > "$DX_BATCH_CONTRACT_FILE"
else
  f="notes/$item.md"
  mkdir -p notes
  printf -- '- %s attempt %s by %s\n' "$item" "$attempt" "$provider" >> "$f"
  git add -- "$f" && git -c user.name=smoke-agent -c user.email=agent@example.invalid commit -q --no-verify -m "$item: attempt $attempt by $provider" || exit 3
  printf '{"phase":"implement","beads_id":"%s","status":"completed","artifacts":{"files_changed":["%s"],"commits":[]},"timestamp":"%s"}' "$item" "$f" "$ts" > "$DX_BATCH_CONTRACT_FILE"
fi
printf '{"event":"end","item":"%s","phase":"%s","attempt":%s,"provider":"%s","pid":%s,"at":"%s","exit_code":0}\n' \
  "$item" "$phase" "$attempt" "$provider" "$$" "$ts" >> "$SMOKE_RECORD_DIR/runs.jsonl"
exit 0
