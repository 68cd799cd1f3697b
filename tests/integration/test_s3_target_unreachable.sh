#!/usr/bin/env bash
# Regression (issue 11): a target endpoint unreachable for ~10 s used to dead-letter the
# event after 6 attempts in 9 s (every refused request charged an attempt). Now it is an
# endpoint outage: the target's circuit breaker opens, the migration waits holding its
# lease and is charged nothing, and it finishes once the endpoint answers again.
# Cross-endpoint copy (second S3Proxy as the target) behind tests/tools/faultproxy.py in
# "refuse" mode (every connection reset at once); the worker keeps the default retry
# settings (retry.max_attempts=6, retry.base_ms=500), the ones that gave up in 9 s.
source "$(dirname "$0")/lib.sh"
[[ -n "${FERRY_S3_ENDPOINT_2:-}" ]] || fail "the stack has no second S3 endpoint (FERRY_STACK_S3_SECOND=1)"

SRC_B=$(bucket tu-src); DST_B=$(bucket tu-dst)
read -r OBJS BYTES < <(seed_dataset "$SRC_B" data/ 30 20000)
export S3TOOL_DST_ENDPOINT=$FERRY_S3_ENDPOINT_2 S3TOOL_DST_ACCESS_KEY_ID=$FERRY_S3_ACCESS_KEY_ID_2 \
       S3TOOL_DST_SECRET_ACCESS_KEY=$FERRY_S3_SECRET_ACCESS_KEY_2
FERRY_S3_ENDPOINT=$FERRY_S3_ENDPOINT_2 AWS_ACCESS_KEY_ID=$FERRY_S3_ACCESS_KEY_ID_2 \
    AWS_SECRET_ACCESS_KEY=$FERRY_S3_SECRET_ACCESS_KEY_2 "$S3TOOL" mb "$DST_B" >/dev/null
DLQ_BASE=$(count_messages "$FERRY_TOPIC_DLQ")

MODE=$WORK/mode
echo refuse >"$MODE"
start_faultproxy "$FERRY_S3_ENDPOINT_2"
TARGET=$FAULTPROXY_EP

DS=tu-$RANDOM$RANDOM
publish "$DS" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
T0=$SECONDS
FERRY_S3_TARGET_ACCESS_KEY_ID=$FERRY_S3_ACCESS_KEY_ID_2 FERRY_S3_TARGET_SECRET_ACCESS_KEY=$FERRY_S3_SECRET_ACCESS_KEY_2 \
    start_worker tu1 -X s3.target.endpoint="$TARGET" -X s3.probe_max_ms=2000 -X log.level=info

# Hold the outage past the 9 s in which the old code gave up, checking as we go.
still_waiting() { [[ $(count_messages "$FERRY_TOPIC_DLQ") -eq $DLQ_BASE && "$(state_field "$DS" status)" != failed ]]; }
holds_for $(( 14 - (SECONDS - T0) )) still_waiting || fail "dead-lettered or failed during a 14 s outage: $(dlq_classes) $(state_field "$DS" last_error)"
grep '"level":"warn"' "$WORK/tu1.log" | has "S3 endpoint $TARGET is down" \
    || { cat "$WORK/tu1.log" >&2; fail "the target's breaker did not open (no warn line naming $TARGET)"; }
# The target refused from the start, so the wait began in validation, before any copy:
# the dataset's last error says so (status, JSON), and its log says so once, at warn.
[[ "$(state_field "$DS" objects_done)" == 0 ]] || fail "objects were copied while the target refused"
waiting_shown() {
    [[ "$(state_field "$DS" last_error)" == "waiting for S3 endpoint $TARGET, down: "* &&
       "$(state_field "$DS" error_class)" == s3-network ]] || return 1
    "$WORKER" status --json | python3 -c '
import json, sys
row = [m for m in json.load(sys.stdin) if m["dataset"] == sys.argv[1]][0]
sys.exit(0 if row["status"] == "running" and (row["last_error"] or "").startswith(
    "waiting for S3 endpoint " + sys.argv[2]) else 1)' "$DS" "$TARGET"
}
wait_until 10 waiting_shown \
    || fail "the wait in validation is not the dataset's last error: status $(state_field "$DS" status), error '$(state_field "$DS" last_error)'"
"$WORKER" status >"$WORK/status.txt" || fail "status exited $?"
grep -q "^$DS .*waiting for S3 endpoint $TARGET" "$WORK/status.txt" || fail "status text: $(grep "^$DS " "$WORK/status.txt")"
n=$(grep '"level":"warn"' "$WORK/tu1.log" | grep "\"dataset\":\"$DS\"" | grep -c "waiting for S3 endpoint $TARGET" || true)
[[ $n == 1 ]] || { grep "$DS" "$WORK/tu1.log" >&2; fail "$n warn lines of $DS about waiting for $TARGET (want 1)"; }
rm -f "$MODE"   # the endpoint answers again
wait_until 90 status_is "$DS" done || { tail -30 "$WORK/tu1.log" >&2; fail "not done after the outage (status $(state_field "$DS" status))"; }
assert_done_exact "$DS" "$OBJS" "$BYTES" "s3://$SRC_B/data/" "s3://$DST_B/copy/"
[[ -z "$(state_field "$DS" last_error)" ]] || fail "done, and still shows the wait: $(state_field "$DS" last_error)"
[[ $(count_messages "$FERRY_TOPIC_DLQ") -eq $DLQ_BASE ]] || fail "dead-lettered: $(dlq_classes)"
[[ "$(state_field "$DS" attempts)" == 1 ]] || fail "the outage cost attempts: $(state_field "$DS" attempts)"
grep -q "S3 endpoint $TARGET answers again" "$WORK/tu1.log" || fail "recovery not logged"
if grep -q '"msg":"attempt [0-9]* failed' "$WORK/tu1.log"; then
    grep '"msg":"attempt' "$WORK/tu1.log" >&2; fail "the outage was charged as failed attempts"
fi
if grep -l 'Sanitizer\|runtime error:' "$WORK"/*.log 2>/dev/null; then fail "sanitizer report"; fi
note "ok: target refused for $(( SECONDS - T0 )) s in all; waited, then $OBJS objects copied; nothing dead-lettered, 1 attempt"
